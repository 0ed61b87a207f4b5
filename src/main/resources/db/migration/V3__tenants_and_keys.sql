-- Tenants, their API keys and quota overrides; job priorities and the fair-claim bookkeeping.

create table tenants (
    id                  text        primary key check (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                text        not null,
    created_at          timestamptz not null,
    -- Quota overrides; null means the global default (modelpress.quotas.*).
    max_stored_bytes    bigint      check (max_stored_bytes >= 0),
    max_running_jobs    integer     check (max_running_jobs >= 0),
    requests_per_second double precision check (requests_per_second > 0),
    burst               integer     check (burst >= 1)
);

-- Only a SHA-256 of each key's 256-bit secret is stored; the prefix finds the row without it.
create table api_keys (
    id           uuid        primary key,
    tenant       text        not null references tenants (id),
    prefix       text        not null unique,
    hash         char(64)    not null,
    name         text,
    role         text        not null check (role in ('admin', 'member')),
    created_at   timestamptz not null,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
create index api_keys_tenant on api_keys (tenant, created_at);

-- Higher runs first among one tenant's queued jobs; tenants are interleaved by the claim.
alter table jobs add column priority integer not null default 0;
create index jobs_claimable_by_owner on jobs (owner, priority desc, created_at) where state = 'QUEUED';
create index jobs_running_by_owner on jobs (owner) where state = 'RUNNING';

-- When each tenant last had a job claimed: the round-robin tie-break of the fair claim (a sequence
-- number, so two claims in the same microsecond still order), and the row its claims serialise on
-- so a tenant's running-job limit holds under concurrent claimers.
create sequence tenant_claim_order;
create table tenant_claims (
    owner           text        primary key,
    last_claim      bigint      not null,
    last_claimed_at timestamptz not null
);
