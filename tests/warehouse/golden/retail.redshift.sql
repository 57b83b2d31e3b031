-- schemas
CREATE SCHEMA IF NOT EXISTS "gold";

-- dimensions, facts and bridges
CREATE TABLE IF NOT EXISTS "gold"."dim_customer" ("customer_key" BIGINT IDENTITY(1, 1) NOT NULL, "customer_id" INTEGER NOT NULL, "email" VARCHAR(200), "first_name" VARCHAR(100) NOT NULL, "last_name" VARCHAR(100) NOT NULL, "phone" VARCHAR(30), "city" VARCHAR(100), "country" CHAR(2), "effective_from" TIMESTAMP NOT NULL, "effective_to" TIMESTAMP, "is_current" BOOLEAN NOT NULL, PRIMARY KEY ("customer_key"), UNIQUE ("customer_id", "effective_from")) DISTSTYLE ALL COMPOUND SORTKEY("customer_id");
CREATE TABLE IF NOT EXISTS "gold"."dim_product" ("product_key" BIGINT IDENTITY(1, 1) NOT NULL, "product_id" INTEGER NOT NULL, "sku" VARCHAR(20) NOT NULL, "name" VARCHAR(200) NOT NULL, "category" VARCHAR(50), "price" DECIMAL(10, 2), "active" BOOLEAN, "effective_from" TIMESTAMP NOT NULL, "effective_to" TIMESTAMP, "is_current" BOOLEAN NOT NULL, PRIMARY KEY ("product_key"), UNIQUE ("product_id", "effective_from")) DISTSTYLE ALL;
CREATE TABLE IF NOT EXISTS "gold"."dim_store" ("store_key" BIGINT IDENTITY(1, 1) NOT NULL, "store_id" INTEGER NOT NULL, "name" VARCHAR(100) NOT NULL, "city" VARCHAR(100), "country" CHAR(2) NOT NULL, "opened_on" DATE, "updated_at" TIMESTAMP, PRIMARY KEY ("store_key"), UNIQUE ("store_id")) DISTSTYLE ALL;
CREATE TABLE IF NOT EXISTS "gold"."dim_date" ("date_key" INTEGER NOT NULL, "full_date" DATE NOT NULL, "year" INTEGER NOT NULL, "quarter" INTEGER NOT NULL, "month" INTEGER NOT NULL, "month_name" VARCHAR(9) NOT NULL, "month_short" VARCHAR(3) NOT NULL, "day_of_month" INTEGER NOT NULL, "day_of_year" INTEGER NOT NULL, "day_of_week" INTEGER NOT NULL, "day_name" VARCHAR(9) NOT NULL, "day_short" VARCHAR(3) NOT NULL, "iso_week" INTEGER NOT NULL, "iso_year" INTEGER NOT NULL, "is_weekend" BOOLEAN NOT NULL, "fiscal_year" INTEGER NOT NULL, "fiscal_quarter" INTEGER NOT NULL, "fiscal_month" INTEGER NOT NULL, "is_holiday" BOOLEAN NOT NULL, "holiday_name" VARCHAR(100), PRIMARY KEY ("date_key"), UNIQUE ("full_date")) DISTSTYLE ALL COMPOUND SORTKEY("date_key");
CREATE TABLE IF NOT EXISTS "gold"."dim_order_profile" ("order_profile_key" BIGINT IDENTITY(1, 1) NOT NULL, "status" VARCHAR(20) NOT NULL, "channel" VARCHAR(10) NOT NULL, "updated_at" TIMESTAMP, PRIMARY KEY ("order_profile_key"), UNIQUE ("status", "channel")) DISTSTYLE ALL;
CREATE TABLE IF NOT EXISTS "gold"."fact_sales" ("order_date_key" INTEGER NOT NULL, "customer_key" BIGINT NOT NULL, "product_key" BIGINT NOT NULL, "store_key" BIGINT NOT NULL, "order_profile_key" BIGINT NOT NULL, "order_id" INTEGER NOT NULL, "line_no" INTEGER NOT NULL, "quantity" INTEGER, "unit_price" DECIMAL(10, 2), "sales_amount" DECIMAL(12, 2), PRIMARY KEY ("order_id", "line_no"), FOREIGN KEY ("order_date_key") REFERENCES "gold"."dim_date" ("date_key"), FOREIGN KEY ("customer_key") REFERENCES "gold"."dim_customer" ("customer_key"), FOREIGN KEY ("product_key") REFERENCES "gold"."dim_product" ("product_key"), FOREIGN KEY ("store_key") REFERENCES "gold"."dim_store" ("store_key"), FOREIGN KEY ("order_profile_key") REFERENCES "gold"."dim_order_profile" ("order_profile_key")) DISTSTYLE KEY DISTKEY("customer_key") COMPOUND SORTKEY("order_date_key");
CREATE TABLE IF NOT EXISTS "gold"."fact_inventory" ("snapshot_date_key" INTEGER NOT NULL, "product_key" BIGINT NOT NULL, "store_key" BIGINT NOT NULL, "quantity_on_hand" INTEGER, "inventory_value" DECIMAL(14, 2), "units_received" INTEGER, PRIMARY KEY ("snapshot_date_key", "product_key", "store_key"), FOREIGN KEY ("snapshot_date_key") REFERENCES "gold"."dim_date" ("date_key"), FOREIGN KEY ("product_key") REFERENCES "gold"."dim_product" ("product_key"), FOREIGN KEY ("store_key") REFERENCES "gold"."dim_store" ("store_key")) DISTSTYLE KEY DISTKEY("product_key") COMPOUND SORTKEY("snapshot_date_key");

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
CREATE TABLE IF NOT EXISTS "_crane"."runs" ("run_id" VARCHAR(MAX), "pipeline" VARCHAR(MAX), "status" VARCHAR(MAX), "started_at" TIMESTAMP WITH TIME ZONE, "finished_at" TIMESTAMP WITH TIME ZONE, "rows_extracted" BIGINT, "rows_loaded" BIGINT, "rows_quarantined" BIGINT, "rows_deduplicated" BIGINT, "rows_in" BIGINT, "bytes" BIGINT, "seconds" DOUBLE PRECISION, "phases" VARCHAR(MAX), "throughput" DOUBLE PRECISION, "watermark_before" VARCHAR(MAX), "watermark_after" VARCHAR(MAX), "schema_diff" VARCHAR(MAX), "attempts" INTEGER, "source" VARCHAR(MAX), "target_table" VARCHAR(MAX), "error" VARCHAR(MAX));
CREATE TABLE IF NOT EXISTS "_crane"."watermarks" ("pipeline" VARCHAR(MAX), "cursor_column" VARCHAR(MAX), "value" VARCHAR(MAX), "kind" VARCHAR(MAX), "next_op" VARCHAR(MAX), "run_id" VARCHAR(MAX), "updated_at" TIMESTAMP WITH TIME ZONE);
CREATE TABLE IF NOT EXISTS "_crane"."schema_changes" ("run_id" VARCHAR(MAX), "pipeline" VARCHAR(MAX), "target_table" VARCHAR(MAX), "diff" VARCHAR(MAX), "statements" VARCHAR(MAX), "changed_at" TIMESTAMP WITH TIME ZONE);
CREATE TABLE IF NOT EXISTS "_crane"."quality_metrics" ("run_id" VARCHAR(MAX), "table_name" VARCHAR(MAX), "check_name" VARCHAR(MAX), "metric" VARCHAR(MAX), "value" DOUBLE PRECISION, "threshold" DOUBLE PRECISION, "passed" BOOLEAN, "measured_at" TIMESTAMP WITH TIME ZONE);
CREATE TABLE IF NOT EXISTS "_crane"."model_tables" ("table_name" VARCHAR(MAX), "owner" VARCHAR(MAX), "dialect" VARCHAR(MAX), "physical" VARCHAR(MAX), "applied_at" TIMESTAMP WITH TIME ZONE);

-- sample analytical views
CREATE OR REPLACE VIEW "gold"."dim_customer_current" AS SELECT * FROM "gold"."dim_customer" WHERE "is_current" = TRUE;
CREATE OR REPLACE VIEW "gold"."dim_product_current" AS SELECT * FROM "gold"."dim_product" WHERE "is_current" = TRUE;
CREATE OR REPLACE VIEW "gold"."fact_sales_by_order_date" AS SELECT "d"."full_date", SUM("f"."quantity") AS "quantity", SUM("f"."sales_amount") AS "sales_amount", COUNT(*) AS "fact_rows" FROM "gold"."fact_sales" AS "f" JOIN "gold"."dim_date" AS "d" ON "f"."order_date_key" = "d"."date_key" GROUP BY "d"."full_date";
CREATE OR REPLACE VIEW "gold"."fact_sales_by_customer" AS SELECT "d"."customer_id", SUM("f"."quantity") AS "quantity", SUM("f"."sales_amount") AS "sales_amount", COUNT(*) AS "fact_rows" FROM "gold"."fact_sales" AS "f" JOIN "gold"."dim_customer" AS "d" ON "f"."customer_key" = "d"."customer_key" GROUP BY "d"."customer_id";
CREATE OR REPLACE VIEW "gold"."fact_inventory_by_snapshot_date" AS SELECT "d"."full_date", SUM("f"."quantity_on_hand") AS "quantity_on_hand", SUM("f"."inventory_value") AS "inventory_value", SUM("f"."units_received") AS "units_received", COUNT(*) AS "fact_rows" FROM "gold"."fact_inventory" AS "f" JOIN "gold"."dim_date" AS "d" ON "f"."snapshot_date_key" = "d"."date_key" GROUP BY "d"."full_date";
CREATE OR REPLACE VIEW "gold"."fact_inventory_by_product" AS SELECT "d"."product_id", SUM("f"."units_received") AS "units_received", COUNT(*) AS "fact_rows" FROM "gold"."fact_inventory" AS "f" JOIN "gold"."dim_product" AS "d" ON "f"."product_key" = "d"."product_key" GROUP BY "d"."product_id";
