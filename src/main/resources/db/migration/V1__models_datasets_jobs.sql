-- Every row carries an owner from the start, so tenancy and quotas need no reshaping later.

create table models (
    id              uuid primary key,
    owner           text        not null,
    name            text        not null,
    format          text        not null check (format in ('onnx', 'safetensors')),
    storage_key     text        not null,
    sha256          char(64)    not null,
    bytes           bigint      not null check (bytes >= 0),
    parameter_count bigint      not null,
    tensor_count    integer     not null,
    summary         jsonb       not null,   -- inputs, outputs, opsets, producer, metadata
    tensors         jsonb       not null,   -- the weight-tensor catalogue that specs are validated against
    created_at      timestamptz not null
);
create index models_owner_created on models (owner, created_at desc);

create table datasets (
    id          uuid primary key,
    owner       text        not null,
    name        text        not null,
    storage_key text        not null,
    sha256      char(64)    not null,
    bytes       bigint      not null check (bytes >= 0),
    samples     bigint      not null,
    has_labels  boolean     not null,
    arrays      jsonb       not null,
    created_at  timestamptz not null
);
create index datasets_owner_created on datasets (owner, created_at desc);

-- The queue. A worker claims a row with FOR UPDATE SKIP LOCKED and holds a lease it renews;
-- a lease that expires makes the row claimable again until max_attempts is reached.
create table jobs (
    id                     uuid primary key,
    owner                  text        not null,
    state                  text        not null check (state in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    model_id               uuid        not null,   -- no FK: a job outlives a deleted model
    calibration_dataset_id uuid,
    evaluation_dataset_id  uuid,
    spec                   jsonb       not null,
    idempotency_key        text,
    request_hash           char(64),
    attempts               integer     not null default 0,
    max_attempts           integer     not null,
    lease_owner            text,
    lease_expires_at       timestamptz,
    cancel_requested       boolean     not null default false,
    progress               jsonb,
    error                  jsonb,
    report_summary         jsonb,
    created_at             timestamptz not null,
    started_at             timestamptz,
    finished_at            timestamptz,
    updated_at             timestamptz not null,
    constraint jobs_idempotency unique (owner, idempotency_key)
);
create index jobs_claimable on jobs (created_at) where state = 'QUEUED';
create index jobs_leased on jobs (lease_expires_at) where state = 'RUNNING';
create index jobs_owner_created on jobs (owner, created_at desc);
create index jobs_model on jobs (model_id);

create table artifacts (
    job_id       uuid        not null references jobs (id) on delete cascade,
    name         text        not null,
    storage_key  text        not null,
    content_type text        not null,
    bytes        bigint      not null,
    sha256       char(64)    not null,
    created_at   timestamptz not null,
    primary key (job_id, name)
);
