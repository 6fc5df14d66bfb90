-- Redefinition adding a CHECK constraint. SQLite re-checks triggers when a table is renamed,
-- so the trigger on "Post" that names "User" is dropped and re-created around it.
PRAGMA foreign_keys=OFF;
DROP TRIGGER "Post_touch_author";
CREATE TABLE "new_User" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL CHECK (length("email") > 3),
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastActiveAt" DATETIME
);
INSERT INTO "new_User" ("id", "email", "createdAt", "lastActiveAt") SELECT "id", "email", "createdAt", "lastActiveAt" FROM "User";
DROP TABLE "User";
ALTER TABLE "new_User" RENAME TO "User";
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE TRIGGER "Post_touch_author" AFTER INSERT ON "Post"
BEGIN
    UPDATE "User" SET "lastActiveAt" = CURRENT_TIMESTAMP WHERE "id" = NEW."authorId";
END;
PRAGMA foreign_keys=ON;
