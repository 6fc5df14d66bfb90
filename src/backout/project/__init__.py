"""A project on disk: configuration, migration layouts (plain, dbmate, Prisma), migrations,
scaffolding."""
