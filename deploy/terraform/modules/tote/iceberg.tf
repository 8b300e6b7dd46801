# The lake as Iceberg tables for every engine: the Glue database that the
# publish function keeps the star's tables in (one Iceberg table per star
# table, the data under the lake's iceberg/ prefix), and an Athena workgroup
# to query them, with its results in the lake's bucket. The facts' current
# versions are views (athena_views.json, rendered from the star model by
# `go test ./deploy/ -run TestAthenaViews -update`), saved as named queries
# to run once in the workgroup. docs/aws.md, "The lake as tables".

resource "aws_glue_catalog_database" "iceberg" {
  count = var.iceberg_enabled ? 1 : 0

  name        = local.glue_database
  description = "The ${local.prefix} star schema as Apache Iceberg tables, published by the ${local.function_names["publish"]} function after each load."

  location_uri = "s3://${local.bucket_name}/${var.lake_prefix}/iceberg"

  tags = local.tags
}

resource "aws_athena_workgroup" "lake" {
  count = var.iceberg_enabled ? 1 : 0

  name          = local.prefix
  description   = "Queries on the ${local.prefix} Iceberg tables (database ${local.glue_database})."
  force_destroy = var.force_destroy

  configuration {
    # Iceberg needs engine version 3; the workgroup's settings win over a
    # client's, so results always land in the lake's bucket, encrypted.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = local.athena_results

      encryption_configuration {
        encryption_option = var.kms_key_arn == null ? "SSE_S3" : "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = local.tags
}

locals {
  # By view name, the CREATE VIEW of each fact's current versions.
  athena_views = jsondecode(file("${path.module}/athena_views.json"))
}

resource "aws_athena_named_query" "current_view" {
  for_each = var.iceberg_enabled ? local.athena_views : {}

  name        = "create ${each.key}"
  description = "Run once (and after a change to the star model): the view of ${trimsuffix(each.key, "_current")}'s current versions, as the warehouse's ${each.key}."
  workgroup   = aws_athena_workgroup.lake[0].id
  database    = aws_glue_catalog_database.iceberg[0].name
  query       = each.value
}
