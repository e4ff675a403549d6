"""JupyterLab in headless Chromium: what a user of ``%%allm`` actually sees."""
