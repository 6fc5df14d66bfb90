-- A type change with USING (char(2) → varchar(2)).
ALTER TABLE addresses ALTER COLUMN country TYPE varchar(2) USING country::varchar(2);
