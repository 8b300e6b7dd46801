# Addresses that changed when issue 18 folded repeated resources into
# for_each: the state of an existing deployment follows them, so that its next
# apply updates in place rather than destroying and re-creating. Drop them
# once every deployment has applied a version with them.

# The service roles and the schedules (pipeline.tf).
moved {
  from = aws_iam_role.state_machine
  to   = aws_iam_role.service["state-machine"]
}

moved {
  from = aws_iam_role.scheduler
  to   = aws_iam_role.service["scheduler"]
}

moved {
  from = aws_scheduler_schedule.pipeline
  to   = aws_scheduler_schedule.schedule["pipeline"]
}

moved {
  from = aws_scheduler_schedule.clean
  to   = aws_scheduler_schedule.schedule["clean"]
}

moved {
  from = aws_scheduler_schedule.verify
  to   = aws_scheduler_schedule.schedule["verify"]
}

moved {
  from = aws_scheduler_schedule.iceberg_maintain[0]
  to   = aws_scheduler_schedule.schedule["iceberg-maintain"]
}

# The alarms (alarms.tf).
moved {
  from = aws_cloudwatch_metric_alarm.lag
  to   = aws_cloudwatch_metric_alarm.alarm["lag"]
}

moved {
  from = aws_cloudwatch_metric_alarm.verify_differences
  to   = aws_cloudwatch_metric_alarm.alarm["verify-differences"]
}

moved {
  from = aws_cloudwatch_metric_alarm.verify_missing
  to   = aws_cloudwatch_metric_alarm.alarm["verify-missing"]
}

moved {
  from = aws_cloudwatch_metric_alarm.executions["failed"]
  to   = aws_cloudwatch_metric_alarm.alarm["executions-failed"]
}

moved {
  from = aws_cloudwatch_metric_alarm.executions["timed-out"]
  to   = aws_cloudwatch_metric_alarm.alarm["executions-timed-out"]
}

moved {
  from = aws_cloudwatch_metric_alarm.executions["aborted"]
  to   = aws_cloudwatch_metric_alarm.alarm["executions-aborted"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["extract"]
  to   = aws_cloudwatch_metric_alarm.alarm["extract-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["transform"]
  to   = aws_cloudwatch_metric_alarm.alarm["transform-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["load"]
  to   = aws_cloudwatch_metric_alarm.alarm["load-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["publish"]
  to   = aws_cloudwatch_metric_alarm.alarm["publish-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["clean"]
  to   = aws_cloudwatch_metric_alarm.alarm["clean-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.function_errors["verify"]
  to   = aws_cloudwatch_metric_alarm.alarm["verify-errors"]
}
