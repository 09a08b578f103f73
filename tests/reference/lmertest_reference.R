# Reference values of the F tests behind seqrob's lrt_order and lrt_order_family rows,
# from lmerTest (Satterthwaite) and pbkrtest (Kenward-Roger), for tests/test_mixed.py.
#
#   python tests/reference/lmertest_make_data.py                        # lmertest_data_*.csv
#   Rscript tests/reference/lmertest_reference.R tests/reference      # lmertest_*.json
#
# For every lme4_data_NAME.csv and lmertest_data_NAME.csv, the REML fit of
#   score ~ order * family + (1|seed) + (1|seed:order) + (1|language)
# and
#   - anova(fit, type = 2, ddf = "Satterthwaite"): the order (adjusted for family,
#     type II) and order:family F tests (F, NumDF, DenDF, p);
#   - Lancaster's combination of those two p-values (what seqrob reports as lrt_order):
#     X = qchisq(p_order, q1, lower = FALSE) + qchisq(p_int, q2, lower = FALSE) on q1 + q2 df;
#   - contestMD(fit, L, ddf = "Satterthwaite") for L = all order coefficients (the one-F
#     test of order * family vs family, Fai & Cornelius 1996) and L = the order:family
#     coefficients;
#   - the same type II anova and contests with ddf = "Kenward-Roger" (pbkrtest), for
#     comparison (seqrob does not compute Kenward-Roger);
#   - the exact split-plot F of order on run means (complete designs: every run scored
#     in every language): anova(lm(m ~ seed + order)) on the means over languages, and its
#     Lancaster combination with the order:family F (what seqrob reports there);
#   - the trap model without (1|seed:order): its type II Satterthwaite anova and the
#     Lancaster combination (seed noise read as an order effect).
# Factor levels: order with "none" first then as they appear, family as it appears.
suppressPackageStartupMessages({
  library(lmerTest)
  library(jsonlite)
})
has_kr <- requireNamespace("pbkrtest", quietly = TRUE)

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "."
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

ftable <- function(a) {
  lapply(setNames(rownames(a), rownames(a)), function(term) list(
    F = a[term, "F value"], ndf = a[term, "NumDF"], ddf = a[term, "DenDF"], p = a[term, "Pr(>F)"]))
}
contest <- function(fit, L, ddf) {
  a <- contestMD(fit, L, ddf = ddf)
  list(F = a[["F value"]], ndf = a[["NumDF"]], ddf = a[["DenDF"]], p = a[["Pr(>F)"]])
}
lancaster <- function(a, b) {
  x <- qchisq(a$p, a$ndf, lower.tail = FALSE) + qchisq(b$p, b$ndf, lower.tail = FALSE)
  list(statistic = x, df = a$ndf + b$ndf, p = pchisq(x, a$ndf + b$ndf, lower.tail = FALSE))
}

paths <- c(Sys.glob(file.path(dir, "lme4_data_*.csv")), Sys.glob(file.path(dir, "lmertest_data_*.csv")))
for (path in paths) {
  name <- sub("^(lme4|lmertest)_data_(.*)\\.csv$", "\\2", basename(path))
  d <- read.csv(path, stringsAsFactors = FALSE)
  d$order <- factor(d$order, levels = unique(c("none", d$order)))
  d$family <- factor(d$family, levels = unique(d$family))
  d$seed <- factor(d$seed)
  d$language <- factor(d$language)
  fit <- lmer(score ~ order * family + (1|seed) + (1|seed:order) + (1|language), data = d, REML = TRUE,
              control = ctrl)
  beta <- names(fixef(fit))
  all_order <- grepl("^order", beta)
  interaction <- grepl("^order.*:family", beta)
  eye <- diag(length(beta))
  sat <- ftable(anova(fit, type = 2, ddf = "Satterthwaite"))
  out <- list(
    dataset = name,
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest")),
    pbkrtest = if (has_kr) as.character(packageVersion("pbkrtest")) else NA,
    coefficients = beta,
    satterthwaite = list(
      type2 = sat,
      lancaster = lancaster(sat[["order"]], sat[["order:family"]]),
      all_order = contest(fit, eye[all_order, , drop = FALSE], "Satterthwaite"),
      interaction = contest(fit, eye[interaction, , drop = FALSE], "Satterthwaite")
    )
  )
  if (nrow(d) == nlevels(d$order) * nlevels(d$seed) * nlevels(d$language)) {
    m <- aggregate(score ~ order + seed, data = d, FUN = mean)
    a <- anova(lm(score ~ seed + order, data = m))
    rm <- list(F = a["order", "F value"], ndf = a["order", "Df"], ddf = a["Residuals", "Df"], p = a["order", "Pr(>F)"])
    out$run_means <- list(order = rm, lancaster = lancaster(rm, sat[["order:family"]]))
  }
  trap <- lmer(score ~ order * family + (1|seed) + (1|language), data = d, REML = TRUE, control = ctrl)
  trap_sat <- ftable(anova(trap, type = 2, ddf = "Satterthwaite"))
  out$trap <- list(type2 = trap_sat, lancaster = lancaster(trap_sat[["order"]], trap_sat[["order:family"]]))
  if (has_kr) {
    kr <- ftable(anova(fit, type = 2, ddf = "Kenward-Roger"))
    out$kenward_roger <- list(
      type2 = kr,
      all_order = contest(fit, eye[all_order, , drop = FALSE], "Kenward-Roger"),
      interaction = contest(fit, eye[interaction, , drop = FALSE], "Kenward-Roger")
    )
  }
  file <- file.path(dir, paste0("lmertest_", name, ".json"))
  write_json(out, file, auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat("wrote", file, "\n")
}
