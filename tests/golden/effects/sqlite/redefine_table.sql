-- What Prisma generates for a change SQLite's ALTER TABLE cannot make ("RedefineTables").
-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Voucher" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "code" TEXT NOT NULL,
    "value" INTEGER NOT NULL,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Voucher" ("code", "id", "updatedAt", "value") SELECT "code", "id", "updatedAt", "value" FROM "Voucher";
DROP TABLE "Voucher";
ALTER TABLE "new_Voucher" RENAME TO "Voucher";
CREATE UNIQUE INDEX "Voucher_code_key" ON "Voucher"("code");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
