"""SQL as sqlglot syntax trees: quoting, dialect rendering, and the shared merge builder.

``build`` holds the small builders (identifiers, tables, DDL, Arrow→SQL types);
``merge`` the one upsert builder every engine uses (MERGE, or INSERT … ON
DUPLICATE KEY UPDATE where the engine has no MERGE) and its key-pruned deletes.
"""
