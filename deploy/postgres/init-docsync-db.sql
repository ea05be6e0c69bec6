-- Runs once, when the PostgreSQL volume is created: the docsync state store lives in its
-- own database next to the Airflow metadata database (POSTGRES_DB=airflow).
CREATE DATABASE docsync OWNER airflow;
