-- schemas
CREATE SCHEMA IF NOT EXISTS "gold";

-- surrogate key sequences
CREATE SEQUENCE IF NOT EXISTS "gold"."seq_dim_customer";
CREATE SEQUENCE IF NOT EXISTS "gold"."seq_dim_product";
CREATE SEQUENCE IF NOT EXISTS "gold"."seq_dim_store";
CREATE SEQUENCE IF NOT EXISTS "gold"."seq_dim_order_profile";

-- dimensions, facts and bridges
CREATE TABLE IF NOT EXISTS "gold"."dim_customer" ("customer_key" BIGINT DEFAULT NEXTVAL('"gold"."seq_dim_customer"') NOT NULL, "customer_id" INT NOT NULL, "email" TEXT(200), "first_name" TEXT(100) NOT NULL, "last_name" TEXT(100) NOT NULL, "phone" TEXT(30), "city" TEXT(100), "country" TEXT(2), "effective_from" TIMESTAMP NOT NULL, "effective_to" TIMESTAMP, "is_current" BOOLEAN NOT NULL, PRIMARY KEY ("customer_key"), UNIQUE ("customer_id", "effective_from"));
CREATE TABLE IF NOT EXISTS "gold"."dim_product" ("product_key" BIGINT DEFAULT NEXTVAL('"gold"."seq_dim_product"') NOT NULL, "product_id" INT NOT NULL, "sku" TEXT(20) NOT NULL, "name" TEXT(200) NOT NULL, "category" TEXT(50), "price" DECIMAL(10, 2), "active" BOOLEAN, "effective_from" TIMESTAMP NOT NULL, "effective_to" TIMESTAMP, "is_current" BOOLEAN NOT NULL, PRIMARY KEY ("product_key"), UNIQUE ("product_id", "effective_from"));
CREATE TABLE IF NOT EXISTS "gold"."dim_store" ("store_key" BIGINT DEFAULT NEXTVAL('"gold"."seq_dim_store"') NOT NULL, "store_id" INT NOT NULL, "name" TEXT(100) NOT NULL, "city" TEXT(100), "country" TEXT(2) NOT NULL, "opened_on" DATE, "updated_at" TIMESTAMP, PRIMARY KEY ("store_key"), UNIQUE ("store_id"));
CREATE TABLE IF NOT EXISTS "gold"."dim_date" ("date_key" INT NOT NULL, "full_date" DATE NOT NULL, "year" INT NOT NULL, "quarter" INT NOT NULL, "month" INT NOT NULL, "month_name" TEXT(9) NOT NULL, "month_short" TEXT(3) NOT NULL, "day_of_month" INT NOT NULL, "day_of_year" INT NOT NULL, "day_of_week" INT NOT NULL, "day_name" TEXT(9) NOT NULL, "day_short" TEXT(3) NOT NULL, "iso_week" INT NOT NULL, "iso_year" INT NOT NULL, "is_weekend" BOOLEAN NOT NULL, "fiscal_year" INT NOT NULL, "fiscal_quarter" INT NOT NULL, "fiscal_month" INT NOT NULL, "is_holiday" BOOLEAN NOT NULL, "holiday_name" TEXT(100), PRIMARY KEY ("date_key"), UNIQUE ("full_date"));
CREATE TABLE IF NOT EXISTS "gold"."dim_order_profile" ("order_profile_key" BIGINT DEFAULT NEXTVAL('"gold"."seq_dim_order_profile"') NOT NULL, "status" TEXT(20) NOT NULL, "channel" TEXT(10) NOT NULL, "updated_at" TIMESTAMP, PRIMARY KEY ("order_profile_key"), UNIQUE ("status", "channel"));
CREATE TABLE IF NOT EXISTS "gold"."fact_sales" ("order_date_key" INT NOT NULL, "customer_key" BIGINT NOT NULL, "product_key" BIGINT NOT NULL, "store_key" BIGINT NOT NULL, "order_profile_key" BIGINT NOT NULL, "order_id" INT NOT NULL, "line_no" INT NOT NULL, "quantity" INT, "unit_price" DECIMAL(10, 2), "sales_amount" DECIMAL(12, 2), PRIMARY KEY ("order_id", "line_no"), FOREIGN KEY ("order_date_key") REFERENCES "gold"."dim_date" ("date_key"), FOREIGN KEY ("customer_key") REFERENCES "gold"."dim_customer" ("customer_key"), FOREIGN KEY ("product_key") REFERENCES "gold"."dim_product" ("product_key"), FOREIGN KEY ("store_key") REFERENCES "gold"."dim_store" ("store_key"), FOREIGN KEY ("order_profile_key") REFERENCES "gold"."dim_order_profile" ("order_profile_key"));
CREATE TABLE IF NOT EXISTS "gold"."fact_inventory" ("snapshot_date_key" INT NOT NULL, "product_key" BIGINT NOT NULL, "store_key" BIGINT NOT NULL, "quantity_on_hand" INT, "inventory_value" DECIMAL(14, 2), "units_received" INT, PRIMARY KEY ("snapshot_date_key", "product_key", "store_key"), FOREIGN KEY ("snapshot_date_key") REFERENCES "gold"."dim_date" ("date_key"), FOREIGN KEY ("product_key") REFERENCES "gold"."dim_product" ("product_key"), FOREIGN KEY ("store_key") REFERENCES "gold"."dim_store" ("store_key"));

-- comments
COMMENT ON TABLE "gold"."dim_customer" IS 'Customers; history kept for the address (SCD Type 2), the rest overwritten';
COMMENT ON COLUMN "gold"."dim_customer"."customer_key" IS 'surrogate key';
COMMENT ON COLUMN "gold"."dim_customer"."city" IS 'address - history kept';
COMMENT ON COLUMN "gold"."dim_customer"."country" IS 'address - history kept';
COMMENT ON COLUMN "gold"."dim_customer"."effective_from" IS 'version valid from';
COMMENT ON COLUMN "gold"."dim_customer"."effective_to" IS 'version valid until';
COMMENT ON COLUMN "gold"."dim_customer"."is_current" IS 'current version';
COMMENT ON TABLE "gold"."dim_product" IS 'Products; a price change starts a new version (SCD Type 2)';
COMMENT ON COLUMN "gold"."dim_product"."product_key" IS 'surrogate key';
COMMENT ON COLUMN "gold"."dim_product"."price" IS 'list price - history kept';
COMMENT ON COLUMN "gold"."dim_product"."effective_from" IS 'version valid from';
COMMENT ON COLUMN "gold"."dim_product"."effective_to" IS 'version valid until';
COMMENT ON COLUMN "gold"."dim_product"."is_current" IS 'current version';
COMMENT ON TABLE "gold"."dim_store" IS 'Stores, overwritten in place (SCD Type 1)';
COMMENT ON COLUMN "gold"."dim_store"."store_key" IS 'surrogate key';
COMMENT ON COLUMN "gold"."dim_store"."updated_at" IS 'last change';
COMMENT ON TABLE "gold"."dim_date" IS 'Calendar days with ISO weeks, fiscal periods and holidays';
COMMENT ON COLUMN "gold"."dim_date"."date_key" IS 'surrogate key';
COMMENT ON TABLE "gold"."dim_order_profile" IS 'Combinations of order status and sales channel';
COMMENT ON COLUMN "gold"."dim_order_profile"."order_profile_key" IS 'surrogate key';
COMMENT ON COLUMN "gold"."dim_order_profile"."updated_at" IS 'last change';
COMMENT ON TABLE "gold"."fact_sales" IS 'One row per order line';
COMMENT ON COLUMN "gold"."fact_sales"."order_date_key" IS 'order_date (date)';
COMMENT ON COLUMN "gold"."fact_sales"."customer_key" IS 'customer (customer)';
COMMENT ON COLUMN "gold"."fact_sales"."product_key" IS 'product (product)';
COMMENT ON COLUMN "gold"."fact_sales"."store_key" IS 'store (store)';
COMMENT ON COLUMN "gold"."fact_sales"."order_profile_key" IS 'order_profile (order_profile)';
COMMENT ON COLUMN "gold"."fact_sales"."order_id" IS 'order number';
COMMENT ON COLUMN "gold"."fact_sales"."unit_price" IS 'a price is never summed';
COMMENT ON TABLE "gold"."fact_inventory" IS 'Stock on hand per product, store and day';
COMMENT ON COLUMN "gold"."fact_inventory"."snapshot_date_key" IS 'snapshot_date (date)';
COMMENT ON COLUMN "gold"."fact_inventory"."product_key" IS 'product (product)';
COMMENT ON COLUMN "gold"."fact_inventory"."store_key" IS 'store (store)';
COMMENT ON COLUMN "gold"."fact_inventory"."quantity_on_hand" IS 'sums across stores, not days';

-- role-playing dimension views
CREATE OR REPLACE VIEW "gold"."dim_order_date" AS SELECT "date_key" AS "order_date_key", "full_date" AS "order_date_full_date", "year" AS "order_date_year", "quarter" AS "order_date_quarter", "month" AS "order_date_month", "month_name" AS "order_date_month_name", "month_short" AS "order_date_month_short", "day_of_month" AS "order_date_day_of_month", "day_of_year" AS "order_date_day_of_year", "day_of_week" AS "order_date_day_of_week", "day_name" AS "order_date_day_name", "day_short" AS "order_date_day_short", "iso_week" AS "order_date_iso_week", "iso_year" AS "order_date_iso_year", "is_weekend" AS "order_date_is_weekend", "fiscal_year" AS "order_date_fiscal_year", "fiscal_quarter" AS "order_date_fiscal_quarter", "fiscal_month" AS "order_date_fiscal_month", "is_holiday" AS "order_date_is_holiday", "holiday_name" AS "order_date_holiday_name" FROM "gold"."dim_date";
CREATE OR REPLACE VIEW "gold"."dim_snapshot_date" AS SELECT "date_key" AS "snapshot_date_key", "full_date" AS "snapshot_date_full_date", "year" AS "snapshot_date_year", "quarter" AS "snapshot_date_quarter", "month" AS "snapshot_date_month", "month_name" AS "snapshot_date_month_name", "month_short" AS "snapshot_date_month_short", "day_of_month" AS "snapshot_date_day_of_month", "day_of_year" AS "snapshot_date_day_of_year", "day_of_week" AS "snapshot_date_day_of_week", "day_name" AS "snapshot_date_day_name", "day_short" AS "snapshot_date_day_short", "iso_week" AS "snapshot_date_iso_week", "iso_year" AS "snapshot_date_iso_year", "is_weekend" AS "snapshot_date_is_weekend", "fiscal_year" AS "snapshot_date_fiscal_year", "fiscal_quarter" AS "snapshot_date_fiscal_quarter", "fiscal_month" AS "snapshot_date_fiscal_month", "is_holiday" AS "snapshot_date_is_holiday", "holiday_name" AS "snapshot_date_holiday_name" FROM "gold"."dim_date";

-- crane helper tables: run history, watermarks, schema changes, quality metrics
CREATE SCHEMA IF NOT EXISTS "_crane";
CREATE TABLE IF NOT EXISTS "_crane"."runs" ("run_id" TEXT, "pipeline" TEXT, "status" TEXT, "started_at" TIMESTAMPTZ, "finished_at" TIMESTAMPTZ, "rows_extracted" BIGINT, "rows_loaded" BIGINT, "rows_quarantined" BIGINT, "rows_deduplicated" BIGINT, "rows_in" BIGINT, "bytes" BIGINT, "seconds" DOUBLE, "phases" TEXT, "throughput" DOUBLE, "watermark_before" TEXT, "watermark_after" TEXT, "schema_diff" TEXT, "attempts" INT, "source" TEXT, "target_table" TEXT, "error" TEXT);
CREATE TABLE IF NOT EXISTS "_crane"."watermarks" ("pipeline" TEXT, "cursor_column" TEXT, "value" TEXT, "kind" TEXT, "next_op" TEXT, "run_id" TEXT, "updated_at" TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS "_crane"."schema_changes" ("run_id" TEXT, "pipeline" TEXT, "target_table" TEXT, "diff" TEXT, "statements" TEXT, "changed_at" TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS "_crane"."quality_metrics" ("run_id" TEXT, "table_name" TEXT, "check_name" TEXT, "metric" TEXT, "value" DOUBLE, "threshold" DOUBLE, "passed" BOOLEAN, "measured_at" TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS "_crane"."model_tables" ("table_name" TEXT, "owner" TEXT, "dialect" TEXT, "physical" TEXT, "applied_at" TIMESTAMPTZ);

-- sample analytical views
CREATE OR REPLACE VIEW "gold"."dim_customer_current" AS SELECT * FROM "gold"."dim_customer" WHERE "is_current" = TRUE;
CREATE OR REPLACE VIEW "gold"."dim_product_current" AS SELECT * FROM "gold"."dim_product" WHERE "is_current" = TRUE;
CREATE OR REPLACE VIEW "gold"."fact_sales_by_order_date" AS SELECT "d"."full_date", SUM("f"."quantity") AS "quantity", SUM("f"."sales_amount") AS "sales_amount", COUNT(*) AS "fact_rows" FROM "gold"."fact_sales" AS "f" JOIN "gold"."dim_date" AS "d" ON "f"."order_date_key" = "d"."date_key" GROUP BY "d"."full_date";
CREATE OR REPLACE VIEW "gold"."fact_sales_by_customer" AS SELECT "d"."customer_id", SUM("f"."quantity") AS "quantity", SUM("f"."sales_amount") AS "sales_amount", COUNT(*) AS "fact_rows" FROM "gold"."fact_sales" AS "f" JOIN "gold"."dim_customer" AS "d" ON "f"."customer_key" = "d"."customer_key" GROUP BY "d"."customer_id";
CREATE OR REPLACE VIEW "gold"."fact_inventory_by_snapshot_date" AS SELECT "d"."full_date", SUM("f"."quantity_on_hand") AS "quantity_on_hand", SUM("f"."inventory_value") AS "inventory_value", SUM("f"."units_received") AS "units_received", COUNT(*) AS "fact_rows" FROM "gold"."fact_inventory" AS "f" JOIN "gold"."dim_date" AS "d" ON "f"."snapshot_date_key" = "d"."date_key" GROUP BY "d"."full_date";
CREATE OR REPLACE VIEW "gold"."fact_inventory_by_product" AS SELECT "d"."product_id", SUM("f"."units_received") AS "units_received", COUNT(*) AS "fact_rows" FROM "gold"."fact_inventory" AS "f" JOIN "gold"."dim_product" AS "d" ON "f"."product_key" = "d"."product_key" GROUP BY "d"."product_id";
