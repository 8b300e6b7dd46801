# Alerts: one SNS topic that the state machine publishes failures to and every
# alarm notifies (on alarm and on recovery).

resource "aws_sns_topic" "alerts" {
  name = "${local.prefix}-alerts"

  tags = local.tags
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alert_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

locals {
  # Every alarm, by the last part of its name (<name>-<environment>-...):
  # what it watches and when it fires, over these defaults (one period over
  # nothing is an alarm).
  alarm_defaults = {
    statistic           = "Sum"
    period              = var.alarm_period_seconds
    evaluation_periods  = 1
    datapoints_to_alarm = null
    comparison          = "GreaterThanThreshold"
    threshold           = 0
    missing_data        = "notBreaching" # no runs ending badly: nothing to say
  }
  # On the metrics tote's functions publish (namespace Tote), Differences
  # unless said otherwise.
  tote_alarm_defaults = merge(local.alarm_defaults, {
    namespace = "Tote"
    metric    = "Differences"
    statistic = "Maximum"
  })

  alarms = merge(
    # A run that ended badly.
    {
      for kind, metric in { failed = "ExecutionsFailed", timed-out = "ExecutionsTimedOut", aborted = "ExecutionsAborted" } : "executions-${kind}" => merge(local.alarm_defaults, {
        description = "A ${local.prefix} pipeline run ended ${replace(kind, "-", " ")}. See the execution history in the Step Functions console."
        namespace   = "AWS/States"
        metric      = metric
        dimensions  = tomap({ StateMachineArn = aws_sfn_state_machine.pipeline.arn })
      })
    },
    # A function that failed.
    {
      for stage in keys(local.functions) : "${stage}-errors" => merge(local.alarm_defaults, {
        description = "The ${local.prefix} ${stage} function failed. Its log group ${aws_cloudwatch_log_group.function[stage].name} says why."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = tomap({ FunctionName = aws_lambda_function.stage[stage].function_name })
      })
    },
    {
      # The freshness promise. Every run publishes LagSeconds (namespace
      # Tote, dimensions Stage=load and Environment) as an Embedded Metric
      # Format line: the load function after each load, or the extract
      # function when it found nothing new and everything is loaded (the
      # state machine then stops after it). Missing data means runs
      # stopped, which breaks the promise as surely as a high value. Two
      # periods of three: a run that lands in the next period does not page
      # anyone, two missing or late ones do (10 minutes by default).
      lag = merge(local.tote_alarm_defaults, {
        description         = "The ${local.prefix} warehouse is more than ${local.lag_threshold} behind the source, or loads stopped reporting."
        metric              = "LagSeconds"
        dimensions          = tomap({ Stage = "load", Environment = var.environment })
        evaluation_periods  = 3
        datapoints_to_alarm = 2
        threshold           = var.lag_threshold_seconds
        missing_data        = "breaching"
      })
      # verify: the function publishes Differences (namespace Tote,
      # dimensions Stage=verify and Environment) after every comparison, 0
      # when the warehouse matches the source. The alarm fires on the first
      # comparison that finds a difference and recovers on the first that
      # finds none; in between, with no comparison, it keeps its state
      # (missing data ignored).
      verify-differences = merge(local.tote_alarm_defaults, {
        description  = "tote verify found rows that differ between the ${local.prefix} warehouse and the source. The verify function's log (${aws_cloudwatch_log_group.function["verify"].name}) names the tables and ids; tote verify --repair sends the rows again."
        dimensions   = tomap({ Stage = "verify", Environment = var.environment })
        missing_data = "ignore"
      })
      # A verify that never runs says nothing: this one fires when two whole
      # days pass without a comparison (a failed one publishes no
      # Differences; the function's Errors alarm says why).
      verify-missing = merge(local.tote_alarm_defaults, {
        description         = "No tote verify of the ${local.prefix} warehouse completed for two days. Is the ${aws_scheduler_schedule.schedule["verify"].name} schedule enabled? Does the verify function fail (its errors alarm, its log)?"
        dimensions          = tomap({ Stage = "verify", Environment = var.environment })
        statistic           = "SampleCount"
        period              = 86400
        evaluation_periods  = 2
        datapoints_to_alarm = 2
        comparison          = "LessThanThreshold"
        threshold           = 1
        missing_data        = "breaching"
      })
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "alarm" {
  for_each = local.alarms

  alarm_name        = "${local.prefix}-${each.key}"
  alarm_description = each.value.description

  namespace   = each.value.namespace
  metric_name = each.value.metric
  dimensions  = each.value.dimensions
  statistic   = each.value.statistic
  period      = each.value.period

  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing_data

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}
