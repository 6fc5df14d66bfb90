ALTER TABLE products ADD COLUMN state text NOT NULL DEFAULT 'draft';
