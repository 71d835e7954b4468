-- Initial migration: a tiny key/value table so that migrations have something to apply.
-- Later migrations (leaderboard, runs, ...) are numbered 0002_..., 0003_... after this one.
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '1');
