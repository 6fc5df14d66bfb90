-- An enum gains a value.
ALTER TYPE order_status ADD VALUE 'cancelled';
