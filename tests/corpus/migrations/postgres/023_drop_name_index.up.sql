-- A dropped index.
DROP INDEX products_name_lower_idx;
