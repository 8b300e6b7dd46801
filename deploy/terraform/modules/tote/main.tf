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
  }

  functions = {
    extract = {
      memory_mb       = var.extract_memory_mb
      timeout_seconds = var.extract_timeout_seconds
      secret_env      = "TOTE_SOURCE_URL"
      secret_name     = aws_secretsmanager_secret.source.name
      secret_arn      = aws_secretsmanager_secret.source.arn
    }
    transform = {
      memory_mb       = var.transform_memory_mb
      timeout_seconds = var.transform_timeout_seconds
      secret_env      = null
      secret_name     = null
      secret_arn      = null
    }
    load = {
      memory_mb       = var.load_memory_mb
      timeout_seconds = var.load_timeout_seconds
      secret_env      = "TOTE_WAREHOUSE_URL"
      secret_name     = aws_secretsmanager_secret.warehouse.name
      secret_arn      = aws_secretsmanager_secret.warehouse.arn
    }
    # Lists and reads manifests and deletes: little memory, a few minutes
    # for a lake of years.
    clean = {
      memory_mb       = 256
      timeout_seconds = 300
      secret_env      = null
      secret_name     = null
      secret_arn      = null
    }
  }
  # The functions the state machine runs, in order; clean runs on its own.
  stages         = ["extract", "transform", "load"]
  function_names = { for stage in keys(local.functions) : stage => "${local.prefix}-${stage}" }

  # Go calls it amd64, Lambda x86_64.
  lambda_architecture = { arm64 = "arm64", amd64 = "x86_64" }[var.architecture]

  # A Go duration for TOTE_LAG_THRESHOLD: "30m" for the default 1800 s.
  lag_threshold = var.lag_threshold_seconds % 60 == 0 ? "${var.lag_threshold_seconds / 60}m" : "${var.lag_threshold_seconds}s"

  in_vpc = length(var.subnet_ids) > 0
}
