-- The totesys schema as pg_dump --schema-only shows it on the real database
-- (tables written by Prisma). Keys live in keys.sql and foreign keys in
-- foreign_keys.sql, so that a bulk load can add them after the rows are in.

CREATE TYPE "PaymentTypeName" AS ENUM ('SALES_RECEIPT', 'SALES_REFUND', 'PURCHASE_PAYMENT', 'PURCHASE_REFUND');
CREATE TYPE "TransactionType" AS ENUM ('SALE', 'PURCHASE');

CREATE TABLE _prisma_migrations (
    id character varying(36) NOT NULL,
    checksum character varying(64) NOT NULL,
    finished_at timestamp with time zone,
    migration_name character varying(255) NOT NULL,
    logs text,
    rolled_back_at timestamp with time zone,
    started_at timestamp with time zone NOT NULL DEFAULT now(),
    applied_steps_count integer NOT NULL DEFAULT 0
);

CREATE TABLE address (
    address_id serial,
    address_line_1 text NOT NULL,
    address_line_2 text,
    district text,
    city text NOT NULL,
    postal_code text NOT NULL,
    country text NOT NULL,
    phone text NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE counterparty (
    counterparty_id serial,
    counterparty_legal_name text NOT NULL,
    legal_address_id integer NOT NULL,
    commercial_contact text,
    delivery_contact text,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE currency (
    currency_id serial,
    currency_code text NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE department (
    department_id serial,
    department_name text NOT NULL,
    location text,
    manager text,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE design (
    design_id serial,
    design_name text NOT NULL,
    file_location text NOT NULL,
    file_name text NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE staff (
    staff_id serial,
    first_name text NOT NULL,
    last_name text NOT NULL,
    department_id integer NOT NULL,
    email_address text NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE payment_type (
    payment_type_id serial,
    payment_type_name "PaymentTypeName" NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE sales_order (
    sales_order_id serial,
    design_id integer NOT NULL,
    staff_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    units_sold integer NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    agreed_delivery_date text NOT NULL,
    agreed_payment_date text NOT NULL,
    agreed_delivery_location_id integer NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE purchase_order (
    purchase_order_id serial,
    staff_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    item_code text NOT NULL,
    item_quantity integer NOT NULL,
    item_unit_price numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    agreed_delivery_date text NOT NULL,
    agreed_payment_date text NOT NULL,
    agreed_delivery_location_id integer NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE transaction (
    transaction_id serial,
    transaction_type "TransactionType" NOT NULL,
    sales_order_id integer,
    purchase_order_id integer,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);

CREATE TABLE payment (
    payment_id serial,
    transaction_id integer NOT NULL,
    counterparty_id integer NOT NULL,
    payment_amount numeric(10,2) NOT NULL,
    currency_id integer NOT NULL,
    payment_type_id integer NOT NULL,
    paid boolean NOT NULL,
    payment_date text NOT NULL,
    company_ac_number integer NOT NULL,
    counterparty_ac_number integer NOT NULL,
    created_at timestamp(3) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_updated timestamp(3) without time zone NOT NULL
);
