ALTER TABLE "User" ADD COLUMN "lastActiveAt" DATETIME;

CREATE TRIGGER "Post_touch_author" AFTER INSERT ON "Post"
BEGIN
    UPDATE "User" SET "lastActiveAt" = CURRENT_TIMESTAMP WHERE "id" = NEW."authorId";
END;
