ALTER INDEX orders_user_id_idx RENAME TO orders_by_user_idx;
