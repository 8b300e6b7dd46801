-- Primary and unique keys of totesys, one statement a line: a bulk load adds
-- them after the rows are in, building each index once, several at a time.

ALTER TABLE _prisma_migrations ADD CONSTRAINT _prisma_migrations_pkey PRIMARY KEY (id);
ALTER TABLE address ADD CONSTRAINT address_pkey PRIMARY KEY (address_id);
ALTER TABLE counterparty ADD CONSTRAINT counterparty_pkey PRIMARY KEY (counterparty_id);
ALTER TABLE currency ADD CONSTRAINT currency_pkey PRIMARY KEY (currency_id);
ALTER TABLE department ADD CONSTRAINT department_pkey PRIMARY KEY (department_id);
ALTER TABLE design ADD CONSTRAINT design_pkey PRIMARY KEY (design_id);
ALTER TABLE staff ADD CONSTRAINT staff_pkey PRIMARY KEY (staff_id);
ALTER TABLE payment_type ADD CONSTRAINT payment_type_pkey PRIMARY KEY (payment_type_id);
ALTER TABLE sales_order ADD CONSTRAINT sales_order_pkey PRIMARY KEY (sales_order_id);
ALTER TABLE purchase_order ADD CONSTRAINT purchase_order_pkey PRIMARY KEY (purchase_order_id);
ALTER TABLE transaction ADD CONSTRAINT transaction_pkey PRIMARY KEY (transaction_id);
ALTER TABLE transaction ADD CONSTRAINT transaction_sales_order_id_key UNIQUE (sales_order_id);
ALTER TABLE transaction ADD CONSTRAINT transaction_purchase_order_id_key UNIQUE (purchase_order_id);
ALTER TABLE payment ADD CONSTRAINT payment_pkey PRIMARY KEY (payment_id);
ALTER TABLE payment ADD CONSTRAINT payment_transaction_id_key UNIQUE (transaction_id);
