-- Live progress and signed webhooks.
--
-- Both are driven by triggers on jobs, so every writer (the queue's claim, heartbeat, succeed, fail,
-- cancel, release and expiry statements, and any written later) is covered in the same transaction
-- as the change itself, with no extra round trip:
--   * event_seq counts the changes a client can see (state, progress, cancel request): it is the
--     Server-Sent Events id, monotonic per job whichever process or clock wrote the row; each such
--     change NOTIFYs modelpress_job_events with '<job id>:<event_seq>' (delivered at commit).
--   * a transition into a terminal state of a job with a callback_url inserts its webhook into the
--     outbox: the job is terminal if and only if its webhook is queued (transactional outbox).

alter table jobs add column callback_url text;
alter table jobs add column event_seq bigint not null default 0;

create function jobs_publish_event() returns trigger language plpgsql as $$
begin
    new.event_seq := old.event_seq + 1;
    perform pg_notify('modelpress_job_events', new.id::text || ':' || new.event_seq);
    return new;
end $$;

create trigger jobs_publish_event
    before update on jobs
    for each row
    when (old.state is distinct from new.state
          or old.progress is distinct from new.progress
          or old.cancel_requested is distinct from new.cancel_requested)
    execute function jobs_publish_event();

-- One webhook per job: a job becomes terminal once. id is the webhook-id header, the same on
-- every retry so receivers can deduplicate.
create table webhook_outbox (
    id              uuid        primary key,
    job_id          uuid        not null unique references jobs (id) on delete cascade,
    event_type      text        not null,   -- job.succeeded | job.failed | job.cancelled
    url             text        not null,
    state           text        not null default 'PENDING' check (state in ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        integer     not null default 0,
    next_attempt_at timestamptz not null,   -- when due; a dispatcher pushes it forward while it delivers (its lease)
    payload         text,                   -- the exact body, fixed by the first attempt so retries send the same bytes
    created_at      timestamptz not null,
    finished_at     timestamptz
);
create index webhook_outbox_due on webhook_outbox (next_attempt_at) where state = 'PENDING';

-- Every delivery attempt, successful or not.
create table webhook_deliveries (
    id           bigint      generated always as identity primary key,
    webhook_id   uuid        not null references webhook_outbox (id) on delete cascade,
    job_id       uuid        not null,
    attempt      integer     not null,
    status_code  integer,                  -- null when no response arrived (refused, timeout)
    error        text,
    duration_ms  bigint      not null,
    attempted_at timestamptz not null
);
create index webhook_deliveries_job on webhook_deliveries (job_id, id);

create function jobs_enqueue_webhook() returns trigger language plpgsql as $$
begin
    insert into webhook_outbox (id, job_id, event_type, url, next_attempt_at, created_at)
    values (gen_random_uuid(), new.id, 'job.' || lower(new.state), new.callback_url, now(), now())
    on conflict (job_id) do nothing;
    perform pg_notify('modelpress_webhooks', new.id::text);
    return null;
end $$;

create trigger jobs_enqueue_webhook
    after update of state on jobs
    for each row
    when (new.callback_url is not null
          and new.state in ('SUCCEEDED', 'FAILED', 'CANCELLED')
          and old.state not in ('SUCCEEDED', 'FAILED', 'CANCELLED'))
    execute function jobs_enqueue_webhook();
