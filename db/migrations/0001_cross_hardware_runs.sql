ALTER TABLE `runs` ADD `target` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `recipe` text;