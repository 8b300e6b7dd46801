-- The star schema, exactly as star.Tables defines it (TestMigrateMatchesModel
-- checks that the two agree). Dimensions hold the current state of each
-- entity, keyed by its id. Facts keep one row per source row version, under
-- a surrogate key made here; the version (source id, last_updated_date,
-- last_updated_time) is unique, so a repeated version adds nothing.
--
-- IF NOT EXISTS: a table that was there before has been compared with the
-- model already (the migration stops if it differs) and is adopted as it is.

CREATE TABLE IF NOT EXISTS dim_date (
    date_id date PRIMARY KEY,
    year integer NOT NULL,
    month integer NOT NULL,
    day integer NOT NULL,
    day_of_week integer NOT NULL,
    day_name text NOT NULL,
    month_name text NOT NULL,
    quarter integer NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_staff (
    staff_id integer PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    department_name text NOT NULL,
    location text,
    email_address text NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_location (
    location_id integer PRIMARY KEY,
    address_line_1 text NOT NULL,
    address_line_2 text,
    district text,
    city text NOT NULL,
    postal_code text NOT NULL,
    country text NOT NULL,
    phone text NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_design (
    design_id integer PRIMARY KEY,
    design_name text NOT NULL,
    file_location text NOT NULL,
    file_name text NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_currency (
    currency_id integer PRIMARY KEY,
    currency_code text NOT NULL,
    currency_name text NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_counterparty (
    counterparty_id integer PRIMARY KEY,
    counterparty_legal_name text NOT NULL,
    counterparty_legal_address_line_1 text NOT NULL,
    counterparty_legal_address_line_2 text,
    counterparty_legal_district text,
    counterparty_legal_city text NOT NULL,
    counterparty_legal_postal_code text NOT NULL,
    counterparty_legal_country text NOT NULL,
    counterparty_legal_phone_number text NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_transaction (
    transaction_id integer PRIMARY KEY,
    transaction_type text NOT NULL,
    sales_order_id integer,
    purchase_order_id integer
);

CREATE TABLE IF NOT EXISTS dim_payment_type (
    payment_type_id integer PRIMARY KEY,
    payment_type_name text NOT NULL
);

CREATE TABLE IF NOT EXISTS fact_sales_order (
    sales_record_id serial PRIMARY KEY,
    sales_order_id integer NOT NULL,
    created_date date NOT NULL,
    created_time time NOT NULL,
    last_updated_date date NOT NULL,
    last_updated_time time NOT NULL,
    sales_staff_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    units_sold integer NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    design_id integer NOT NULL,
    agreed_payment_date date NOT NULL,
    agreed_delivery_date date NOT NULL,
    agreed_delivery_location_id integer NOT NULL,
    CONSTRAINT fact_sales_order_version_key UNIQUE (sales_order_id, last_updated_date, last_updated_time)
);

CREATE TABLE IF NOT EXISTS fact_purchase_order (
    purchase_record_id serial PRIMARY KEY,
    purchase_order_id integer NOT NULL,
    created_date date NOT NULL,
    created_time time NOT NULL,
    last_updated_date date NOT NULL,
    last_updated_time time NOT NULL,
    staff_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    item_code text NOT NULL,
    item_quantity integer NOT NULL,
    item_unit_price numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    agreed_delivery_date date NOT NULL,
    agreed_payment_date date NOT NULL,
    agreed_delivery_location_id integer NOT NULL,
    CONSTRAINT fact_purchase_order_version_key UNIQUE (purchase_order_id, last_updated_date, last_updated_time)
);

CREATE TABLE IF NOT EXISTS fact_payment (
    payment_record_id serial PRIMARY KEY,
    payment_id integer NOT NULL,
    created_date date NOT NULL,
    created_time time NOT NULL,
    last_updated_date date NOT NULL,
    last_updated_time time NOT NULL,
    transaction_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    payment_amount numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    payment_type_id integer NOT NULL,
    paid boolean NOT NULL,
    payment_date date NOT NULL,
    CONSTRAINT fact_payment_version_key UNIQUE (payment_id, last_updated_date, last_updated_time)
);
