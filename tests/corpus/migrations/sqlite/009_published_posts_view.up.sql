CREATE VIEW "PublishedPost" AS SELECT "id", "title", "authorId" FROM "Post" WHERE "published" = 1;
