-- A dropped table (its owned identity sequence goes with it; the standalone one stays).
DROP TABLE invoices;
