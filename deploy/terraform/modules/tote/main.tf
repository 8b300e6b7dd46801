# tote on AWS: three Lambda functions (extract, transform, load) from one zip,
# run in order by a Step Functions state machine that EventBridge Scheduler
# starts, and a fourth (clean) that tidies the lake on a schedule of its own;
# the lake on S3, database URLs in Secrets Manager, alerts through SNS.
# lake.tf, functions.tf, pipeline.tf and alarms.tf hold the parts.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Every name starts with <name>-<environment>-, so that environments share
  # an account without sharing anything else.
  prefix = "${var.name}-${var.environment}"
  tags   = merge(var.tags, { environment = var.environment, tote = var.name })

  bucket_name = coalesce(var.bucket_name, "${local.prefix}-lake-${local.account_id}-${local.region}")
  # Built from the name rather than read from the bucket so that policies are
  # known at plan time.
  bucket_arn = "arn:${local.partition}:s3:::${local.bucket_name}"
  lake_url   = "s3://${local.bucket_name}/${var.lake_prefix}"

  # Lake keys each function may touch, relative to the lake prefix. A new zone
  # or marker is one more line here; the policies, including the ListBucket
  # prefixes (the keys ending in /*), follow. The status/ objects are small
  # advisory documents (see awslambda.LoadStatus, extract.Status): extract
  # writes its own and reads load's to tell whether transform and load have
  # work; load writes its own and reads extract's, with the raw manifests,
  # to work out the lag. status/latest_raw.json and latest_processed.json
  # remember each zone's newest batch number, written by the stage that
  # commits there, so that every stage lists only the newest manifests.
  lake_hints = ["status/latest_raw.json", "status/latest_processed.json"]
  lake_access = {
    extract = {
      read   = concat(["manifests/raw/*", "manifests/processed/*", "status/load.json"], local.lake_hints)
      write  = ["raw/*", "manifests/raw/*", "status/extract.json", "status/latest_raw.json"]
      delete = ["raw/*"] # aborting a batch removes its uncommitted files
    }
    transform = {
      read   = concat(["raw/*", "manifests/raw/*", "processed/*", "manifests/processed/*", "status/load.json"], local.lake_hints)
      write  = ["processed/*", "manifests/processed/*", "rejects/*", "status/latest_processed.json"] # a batch's quarantined rows go to rejects/
      delete = ["processed/*", "rejects/*"]
    }
    load = {
      read   = concat(["processed/*", "manifests/processed/*", "rejects/*", "manifests/raw/*", "status/extract.json", "status/load.json"], local.lake_hints)
      write  = ["status/load.json"]
      delete = []
    }
    # `tote lake clean` for both zones: it reads every manifest and deletes
    # the files no manifest lists (a failed invocation's uncommitted batch).
    clean = {
      read   = ["manifests/raw/*", "manifests/processed/*"]
      write  = []
      delete = ["raw/*", "processed/*", "rejects/*"]
    }
    # The Iceberg tables' data and metadata files live under iceberg/, which
    # only publish touches: it writes them, and its maintenance (compaction,
    # snapshot expiry) deletes the ones no snapshot needs any more. It reads
    # the processed manifests to tell a corrective batch from a plain one.
    publish = {
      read   = concat(["iceberg/*", "manifests/processed/*"], local.lake_hints)
      write  = ["iceberg/*"]
      delete = ["iceberg/*"]
    }
    # `tote verify`: what the warehouse holds is as of the newest loaded
    # batch, whose raw manifest says what extraction took (and its raw files
    # which ids were live); it writes nothing to the lake.
    verify = {
      read   = concat(["raw/*", "manifests/raw/*", "manifests/processed/*", "status/extract.json"], local.lake_hints)
      write  = []
      delete = []
    }
  }

  # The database URLs each function reads, by the variable it reads them
  # from, each through its secret.
  source_secret    = { TOTE_SOURCE_URL = { name = aws_secretsmanager_secret.source.name, arn = aws_secretsmanager_secret.source.arn } }
  warehouse_secret = { TOTE_WAREHOUSE_URL = { name = aws_secretsmanager_secret.warehouse.name, arn = aws_secretsmanager_secret.warehouse.arn } }
  no_secret        = {}

  functions = {
    extract = {
      secrets = local.source_secret
      alerts  = false
    }
    # The transform publishes one alert per invocation that quarantines
    # rows, as tote serve does per run (TOTE_ALERT_SNS_TOPIC).
    transform = {
      secrets = local.no_secret
      alerts  = true
    }
    load = {
      secrets = local.warehouse_secret
      alerts  = false
    }
    # Lists and reads manifests and deletes: little memory, a few minutes
    # for a lake of years.
    clean = {
      secrets = local.no_secret
      alerts  = false
    }
    # Publishes every loaded batch to the Iceberg tables in Glue, from the
    # warehouse (so it reads the warehouse secret), after Load.
    publish = {
      secrets = local.warehouse_secret
      alerts  = false
    }
    # tote verify on a schedule of its own: compares both databases by
    # checksums over id ranges, so it is bound by the databases, not by
    # memory.
    verify = {
      secrets = merge(local.source_secret, local.warehouse_secret)
      alerts  = false
    }
  }
  # Memory (MB) and timeout (s) by function: var.function_settings over
  # these. Clean lists, reads manifests and deletes: little memory, a few
  # minutes for a lake of years; verify is bound by the databases, not by
  # memory.
  function_defaults = {
    extract   = { memory_mb = 512, timeout_seconds = 300 }
    transform = { memory_mb = 1024, timeout_seconds = 900 }
    load      = { memory_mb = 1024, timeout_seconds = 900 }
    clean     = { memory_mb = 256, timeout_seconds = 300 }
    publish   = { memory_mb = 1024, timeout_seconds = 900 }
    verify    = { memory_mb = 512, timeout_seconds = 900 }
  }
  function_sizes = {
    for f, d in local.function_defaults : f => {
      memory_mb       = coalesce(try(var.function_settings[f].memory_mb, null), d.memory_mb)
      timeout_seconds = coalesce(try(var.function_settings[f].timeout_seconds, null), d.timeout_seconds)
    }
  }
  # The functions the state machine runs, in order; clean and verify run on
  # schedules of their own.
  stages         = ["extract", "transform", "load", "publish"]
  function_names = { for stage in keys(local.functions) : stage => "${local.prefix}-${stage}" }

  # Go calls it amd64, Lambda x86_64.
  lambda_architecture = { arm64 = "arm64", amd64 = "x86_64" }[var.architecture]

  # A Go duration for TOTE_LAG_THRESHOLD: "30m" for the default 1800 s.
  lag_threshold = var.lag_threshold_seconds % 60 == 0 ? "${var.lag_threshold_seconds / 60}m" : "${var.lag_threshold_seconds}s"

  in_vpc = length(var.subnet_ids) > 0

  # The Iceberg catalog: a Glue database per environment (Glue and Athena
  # want lower case and underscores), its tables written by publish.
  glue_database    = "${replace(var.name, "-", "_")}_${var.environment}"
  iceberg_catalog  = var.iceberg_enabled ? "glue://${local.glue_database}" : "off"
  glue_catalog_arn = "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog"
  glue_arns = [
    local.glue_catalog_arn,
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${local.glue_database}",
    "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${local.glue_database}/*",
  ]
  # Athena writes query results here: in the lake's bucket, outside the lake.
  athena_results = "s3://${local.bucket_name}/athena-results/"
}
