// Setup of the vitest `workers` project: applies db/migrations to the test D1 database.
// Idempotent: applyD1Migrations skips migrations already recorded in d1_migrations.
import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
