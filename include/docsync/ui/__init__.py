"""Server-rendered pages of the docsync Airflow plugin (quarantine review, freshness and lag).
No external assets: inline CSS, inline SVG charts and a few lines of inline script."""
