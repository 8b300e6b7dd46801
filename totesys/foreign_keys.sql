-- Foreign keys of totesys, added after the tables (and, when seeding, after
-- the bulk load, which is much faster than checking every row as it arrives).

ALTER TABLE counterparty ADD CONSTRAINT counterparty_legal_address_id_fkey
    FOREIGN KEY (legal_address_id) REFERENCES address (address_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE staff ADD CONSTRAINT staff_department_id_fkey
    FOREIGN KEY (department_id) REFERENCES department (department_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE sales_order ADD CONSTRAINT sales_order_agreed_delivery_location_id_fkey
    FOREIGN KEY (agreed_delivery_location_id) REFERENCES address (address_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE purchase_order ADD CONSTRAINT purchase_order_agreed_delivery_location_id_fkey
    FOREIGN KEY (agreed_delivery_location_id) REFERENCES address (address_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE payment ADD CONSTRAINT payment_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES transaction (transaction_id) ON UPDATE CASCADE ON DELETE RESTRICT;
