-- db-ci stub of pg_cron: the cron schema, its tables and the scheduling API;
-- jobs are stored and validated, never executed.
\echo Use "CREATE EXTENSION pg_cron" to load this file. \quit

CREATE SCHEMA cron;

CREATE SEQUENCE cron.jobid_seq;
CREATE TABLE cron.job (
  jobid bigint PRIMARY KEY DEFAULT nextval('cron.jobid_seq'),
  schedule text NOT NULL,
  command text NOT NULL,
  nodename text NOT NULL DEFAULT 'localhost',
  nodeport integer NOT NULL DEFAULT current_setting('port')::integer,
  database text NOT NULL DEFAULT current_database(),
  username text NOT NULL DEFAULT current_user,
  active boolean NOT NULL DEFAULT true,
  jobname text,
  CONSTRAINT jobname_username_uniq UNIQUE (jobname, username)
);
GRANT SELECT ON cron.job TO PUBLIC;
ALTER TABLE cron.job ENABLE ROW LEVEL SECURITY;
CREATE POLICY cron_job_policy ON cron.job USING (username = current_user);

CREATE SEQUENCE cron.runid_seq;
CREATE TABLE cron.job_run_details (
  jobid bigint,
  runid bigint PRIMARY KEY DEFAULT nextval('cron.runid_seq'),
  job_pid integer,
  database text,
  username text,
  command text,
  status text,
  return_message text,
  start_time timestamp with time zone,
  end_time timestamp with time zone
);
GRANT SELECT, DELETE ON cron.job_run_details TO PUBLIC;
ALTER TABLE cron.job_run_details ENABLE ROW LEVEL SECURITY;
CREATE POLICY cron_job_run_details_policy ON cron.job_run_details USING (username = current_user);

-- pg_cron accepts five-field cron expressions, @-shortcuts and 'N seconds'.
CREATE FUNCTION cron._check_schedule(schedule text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF schedule IS NULL OR schedule !~* ('^\s*(@(yearly|annually|monthly|weekly|daily|hourly|reboot)'
                                       '|[1-5]?[0-9]\s+seconds?'
                                       '|(\S+\s+){4}\S+)\s*$') THEN
    RAISE EXCEPTION 'invalid schedule: %', schedule;
  END IF;
END
$fn$;

CREATE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  id bigint;
BEGIN
  PERFORM cron._check_schedule(schedule);
  INSERT INTO cron.job (schedule, command) VALUES (schedule, command) RETURNING jobid INTO id;
  RETURN id;
END
$fn$;

-- A named job is replaced when the same user schedules the name again.
CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  id bigint;
BEGIN
  PERFORM cron._check_schedule(schedule);
  INSERT INTO cron.job (jobname, schedule, command) VALUES (job_name, schedule, command)
  ON CONFLICT (jobname, username) DO UPDATE
    SET schedule = excluded.schedule, command = excluded.command, active = true
  RETURNING jobid INTO id;
  RETURN id;
END
$fn$;

CREATE FUNCTION cron.schedule_in_database(job_name text, schedule text, command text, database text,
                                          username text DEFAULT NULL, active boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  id bigint;
BEGIN
  PERFORM cron._check_schedule(schedule);
  INSERT INTO cron.job (jobname, schedule, command, database, username, active)
  VALUES (job_name, schedule, command, database, coalesce(username, current_user), active)
  ON CONFLICT (jobname, username) DO UPDATE
    SET schedule = excluded.schedule, command = excluded.command,
        database = excluded.database, active = excluded.active
  RETURNING jobid INTO id;
  RETURN id;
END
$fn$;

CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
  DELETE FROM cron.job WHERE jobid = job_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'could not find valid entry for job %', job_id;
  END IF;
  RETURN true;
END
$fn$;

CREATE FUNCTION cron.unschedule(job_name text) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
BEGIN
  DELETE FROM cron.job WHERE jobname = job_name AND username = current_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'could not find valid entry for job ''%''', job_name;
  END IF;
  RETURN true;
END
$fn$;

CREATE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                               database text DEFAULT NULL, username text DEFAULT NULL,
                               active boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF schedule IS NOT NULL THEN
    PERFORM cron._check_schedule(schedule);
  END IF;
  UPDATE cron.job j
  SET schedule = coalesce(alter_job.schedule, j.schedule),
      command  = coalesce(alter_job.command, j.command),
      database = coalesce(alter_job.database, j.database),
      username = coalesce(alter_job.username, j.username),
      active   = coalesce(alter_job.active, j.active)
  WHERE j.jobid = job_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'could not find valid entry for job %', job_id;
  END IF;
END
$fn$;

-- The platform hands pg_cron to postgres (its grant_pg_cron_access trigger).
DO $grants$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
    GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
    GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
    GRANT ALL ON ALL SEQUENCES IN SCHEMA cron TO postgres WITH GRANT OPTION;
    GRANT ALL ON ALL FUNCTIONS IN SCHEMA cron TO postgres WITH GRANT OPTION;
  END IF;
END
$grants$;
