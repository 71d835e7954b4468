import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes SQL migrations from db/schema.ts into db/migrations, the folder
// wrangler.toml's migrations_dir names: `wrangler d1 migrations apply` and the workers tests
// (readD1Migrations) apply exactly these files.
export default defineConfig({
  dialect: 'sqlite',
  schema: './db/schema.ts',
  out: './db/migrations',
});
