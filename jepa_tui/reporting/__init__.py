"""Reading finished run and sweep directories into tables (Markdown), the paper's statistics and figures (PNG and
terminal). Imports only the run directory module and the configuration, never the trainer."""
