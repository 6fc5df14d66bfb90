-- An enum value is renamed.
ALTER TYPE order_status RENAME VALUE 'shipped' TO 'fulfilled';
