"""Connectors, one module per system, registered by URL scheme."""

from crane.connectors.base import Capabilities, ConnectionURL, Connector, TableRef, connect

__all__ = ["Capabilities", "ConnectionURL", "Connector", "TableRef", "connect"]
