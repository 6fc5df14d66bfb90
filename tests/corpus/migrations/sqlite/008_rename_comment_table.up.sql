ALTER TABLE "Comment" RENAME TO "PostComment";
