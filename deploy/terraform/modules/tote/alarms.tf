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
  execution_alarms = {
    failed    = "ExecutionsFailed"
    timed-out = "ExecutionsTimedOut"
    aborted   = "ExecutionsAborted"
  }
}

resource "aws_cloudwatch_metric_alarm" "executions" {
  for_each = local.execution_alarms

  alarm_name        = "${local.prefix}-executions-${each.key}"
  alarm_description = "A ${local.prefix} pipeline run ended ${replace(each.key, "-", " ")}. See the execution history in the Step Functions console."

  namespace   = "AWS/States"
  metric_name = each.value
  dimensions  = { StateMachineArn = aws_sfn_state_machine.pipeline.arn }
  statistic   = "Sum"
  period      = var.alarm_period_seconds

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching" # no runs ending badly: nothing to say

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name        = "${local.function_names[each.key]}-errors"
  alarm_description = "The ${local.prefix} ${each.key} function failed. Its log group ${aws_cloudwatch_log_group.function[each.key].name} says why."

  namespace   = "AWS/Lambda"
  metric_name = "Errors"
  dimensions  = { FunctionName = aws_lambda_function.stage[each.key].function_name }
  statistic   = "Sum"
  period      = var.alarm_period_seconds

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}

# The freshness promise. Every run publishes LagSeconds (namespace Tote,
# dimensions Stage=load and Environment) as an Embedded Metric Format line: the load function
# after each load, or the extract function when it found nothing new and
# everything is loaded (the state machine then stops after it). Missing data
# means runs stopped, which breaks the promise as surely as a high value.
resource "aws_cloudwatch_metric_alarm" "lag" {
  alarm_name        = "${local.prefix}-lag"
  alarm_description = "The ${local.prefix} warehouse is more than ${local.lag_threshold} behind the source, or loads stopped reporting."

  namespace   = "Tote"
  metric_name = "LagSeconds"
  dimensions  = { Stage = "load", Environment = var.environment }
  statistic   = "Maximum"
  period      = var.alarm_period_seconds

  # Two periods of three: a run that lands in the next period does not page
  # anyone, two missing or late ones do (10 minutes by default).
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lag_threshold_seconds
  treat_missing_data  = "breaching"

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}

# verify: the function publishes Differences (namespace Tote, dimensions
# Stage=verify and Environment) after every comparison, 0 when the
# warehouse matches the source. The alarm fires on the first comparison
# that finds a difference and recovers on the first that finds none; in
# between, with no comparison, it keeps its state (missing data ignored).
resource "aws_cloudwatch_metric_alarm" "verify_differences" {
  alarm_name        = "${local.prefix}-verify-differences"
  alarm_description = "tote verify found rows that differ between the ${local.prefix} warehouse and the source. The verify function's log (${aws_cloudwatch_log_group.function["verify"].name}) names the tables and ids; tote verify --repair sends the rows again."

  namespace   = "Tote"
  metric_name = "Differences"
  dimensions  = { Stage = "verify", Environment = var.environment }
  statistic   = "Maximum"
  period      = var.alarm_period_seconds

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "ignore"

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}

# A verify that never runs says nothing: this one fires when two whole days
# pass without a comparison (a failed one publishes no Differences; the
# function's Errors alarm says why).
resource "aws_cloudwatch_metric_alarm" "verify_missing" {
  alarm_name        = "${local.prefix}-verify-missing"
  alarm_description = "No tote verify of the ${local.prefix} warehouse completed for two days. Is the ${aws_scheduler_schedule.verify.name} schedule enabled? Does the verify function fail (its errors alarm, its log)?"

  namespace   = "Tote"
  metric_name = "Differences"
  dimensions  = { Stage = "verify", Environment = var.environment }
  statistic   = "SampleCount"
  period      = 86400

  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  alarm_actions = [aws_sns_topic.alerts.arn]
  ok_actions    = [aws_sns_topic.alerts.arn]

  tags = local.tags
}
