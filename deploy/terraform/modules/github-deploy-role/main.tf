# The roles GitHub Actions deploys tote with: GitHub's OIDC identity
# provider, and for each environment a role that only this repository's jobs
# running in that GitHub environment can assume, allowed to manage only that
# environment's resources, and the permissions boundary every role the
# deploy creates must carry. Applied once per account, by an administrator
# (examples/bootstrap). docs/decisions/0019-environments.md says why it is
# shaped so.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  oidc_url   = "token.actions.githubusercontent.com"

  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.oidc_url}"

  # Per environment: the names its resources have (tote's module makes them
  # <name>-<environment>-..., secrets <name>/<environment>/..., the Glue
  # database <name>_<environment>), as ARN patterns for any region.
  envs = {
    for e in var.environments : e => {
      prefix   = "${var.name}-${e}"
      glue_db  = "${replace(var.name, "-", "_")}_${e}"
      state    = "${var.state_key_prefix}/${e}.tfstate"
      boundary = "arn:${local.partition}:iam::${local.account_id}:policy/${var.name}-${e}-boundary"
    }
  }
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
  # AWS no longer checks these for GitHub (it trusts the provider's CA), but
  # provider versions before 5.81 require a value.
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]

  tags = { tote = var.name }
}

resource "aws_iam_role" "deploy" {
  for_each = local.envs

  # Outside the environment's own prefix (<name>-<environment>-*), which the
  # role may manage: it cannot edit itself.
  name                 = "${var.name}-deploy-${each.key}"
  description          = "GitHub Actions deploys the ${each.value.prefix} environment of tote from ${var.github_repository}."
  max_session_duration = var.max_session_seconds
  assume_role_policy   = jsonencode(local.trust_policies[each.key])

  tags = { tote = var.name, environment = each.key }
}

resource "aws_iam_role_policy" "deploy" {
  for_each = local.envs

  name   = "${var.name}-deploy-${each.key}"
  role   = aws_iam_role.deploy[each.key].id
  policy = jsonencode(local.deploy_policies[each.key])
}

# A permissions boundary grants nothing: it caps what any role of the
# environment may do, so it names the functions' actions over the
# environment's resource patterns (tote-ENV-*), wildcards by design. The
# roles' own policies, which do grant, pass the wildcard check.
#tfsec:ignore:aws-iam-no-policy-wildcards
resource "aws_iam_policy" "boundary" {
  for_each = local.envs

  name        = "${each.value.prefix}-boundary"
  description = "The most any role of tote's ${each.key} environment may do; the deploy role may create roles only with this boundary."
  policy      = jsonencode(local.boundary_policies[each.key])

  tags = { tote = var.name, environment = each.key }
}
