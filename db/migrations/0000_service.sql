CREATE TABLE `checks` (
	`submission_id` text NOT NULL,
	`check_id` text NOT NULL,
	`level` integer NOT NULL,
	`outcome` text NOT NULL,
	`value` text,
	`threshold` text NOT NULL,
	`evidence` text NOT NULL,
	PRIMARY KEY(`submission_id`, `check_id`)
);
--> statement-breakpoint
CREATE TABLE `feedback` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task` text NOT NULL,
	`target` text NOT NULL,
	`layer` text NOT NULL,
	`op_type` text NOT NULL,
	`deviation` text NOT NULL,
	`suggestion` text NOT NULL,
	`outcome` text NOT NULL,
	`recovered_points` real,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `feedback_lookup` ON `feedback` (`target`,`op_type`);--> statement-breakpoint
CREATE TABLE `layer_results` (
	`submission_id` text NOT NULL,
	`layer` text NOT NULL,
	`kind` text NOT NULL,
	`tier` text,
	`method` text NOT NULL,
	`act_scale` real NOT NULL,
	`act_zero_point` integer NOT NULL,
	`channels` integer NOT NULL,
	`sqnr_db` real,
	PRIMARY KEY(`submission_id`, `layer`)
);
--> statement-breakpoint
CREATE TABLE `phases` (
	`run_id` text NOT NULL,
	`phase` text NOT NULL,
	`seq` integer NOT NULL,
	`shards` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`run_id`, `phase`)
);
--> statement-breakpoint
CREATE TABLE `rate_limits` (
	`key` text NOT NULL,
	`window` integer NOT NULL,
	`count` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`key`, `window`)
);
--> statement-breakpoint
CREATE TABLE `results` (
	`submission_id` text PRIMARY KEY NOT NULL,
	`task` text NOT NULL,
	`target` text NOT NULL,
	`qqi` real,
	`level` integer NOT NULL,
	`metric` text NOT NULL,
	`fp32` real NOT NULL,
	`int8` real NOT NULL,
	`loss_points` real NOT NULL,
	`estimated_loss_points` real,
	`speedup` real,
	`energy_gain` real,
	`calibration_samples` integer NOT NULL,
	`params_digest` text NOT NULL,
	`trusted` integer NOT NULL,
	`under_review` integer DEFAULT false NOT NULL,
	`review_reason` text,
	`report_key` text NOT NULL,
	`qdq_key` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `results_task_target_qqi` ON `results` (`task`,`target`,`qqi`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`submission_id` text NOT NULL,
	`role` text NOT NULL,
	`shards` integer NOT NULL,
	`status` text DEFAULT 'running' NOT NULL,
	`error` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE INDEX `runs_submission` ON `runs` (`submission_id`);--> statement-breakpoint
CREATE TABLE `shards` (
	`run_id` text NOT NULL,
	`phase` text NOT NULL,
	`idx` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`output_key` text,
	`output_bytes` integer,
	`seconds` real,
	`error` text,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	PRIMARY KEY(`run_id`, `phase`, `idx`)
);
--> statement-breakpoint
CREATE TABLE `submissions` (
	`id` text PRIMARY KEY NOT NULL,
	`submitter` text NOT NULL,
	`token_id` text NOT NULL,
	`recipe_hash` text NOT NULL,
	`recipe` text NOT NULL,
	`recipe_name` text NOT NULL,
	`task` text NOT NULL,
	`target` text NOT NULL,
	`status` text DEFAULT 'queued' NOT NULL,
	`error` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `submissions_submitter_recipe` ON `submissions` (`submitter`,`recipe_hash`);--> statement-breakpoint
CREATE INDEX `submissions_task_target` ON `submissions` (`task`,`target`);--> statement-breakpoint
CREATE TABLE `targets` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`spec` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` text PRIMARY KEY NOT NULL,
	`title` text NOT NULL,
	`kind` text NOT NULL,
	`metric` text NOT NULL,
	`manifest` text NOT NULL,
	`model_key` text NOT NULL,
	`calibration_key` text NOT NULL,
	`evaluation_key` text NOT NULL,
	`labels_key` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`submitter` text NOT NULL,
	`hash` text NOT NULL,
	`role` text DEFAULT 'submitter' NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`revoked_at` integer,
	`last_used_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tokens_hash` ON `tokens` (`hash`);