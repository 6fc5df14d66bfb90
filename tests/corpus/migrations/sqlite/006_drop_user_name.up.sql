-- A dropped column in the middle of the table.
ALTER TABLE "User" DROP COLUMN "name";
