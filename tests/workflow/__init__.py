"""End-to-end tests: Snakemake runs the workflow (Snakefile, workflow/rules) on tiny studies; the README's commands as written."""
