# Reference values for tests/test_mixed.py, from lme4 (and lmerTest for Satterthwaite df).
#
#   python tests/reference/lme4_make_data.py                      # writes lme4_data_*.csv
#   Rscript tests/reference/lme4_reference.R tests/reference # writes lme4_*.json
#
# For every lme4_data_NAME.csv: the crossed model
#   score ~ order * family + (1|seed) + (1|seed:order) + (1|language)
# by ML (logLik, fixef, vcov SEs, VarCorr) and REML (the same, plus lmerTest's
# Satterthwaite df), the ML likelihood-ratio tests of order and order:family, the
# trap model without (1|seed:order), the REML test of one run variance per order,
# and cell means (predictions of the fixed part) and pairwise order contrasts per
# family with Satterthwaite df. Factor levels: order with "none" first then as they
# appear, family as it appears (seqrob's coding).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
has_lmertest <- requireNamespace("lmerTest", quietly = TRUE)

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "."
baseline <- "none"
# Tight optimiser tolerances, so that the references are the optimum and not
# lme4's default stopping point.
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i], var1 = ifelse(is.na(vc$var1[i]), "", vc$var1[i]), vcov = vc$vcov[i]))
}
summary_of <- function(m) {
  list(
    logLik = as.numeric(logLik(m)),
    deviance = if (isREML(m)) as.numeric(REMLcrit(m)) else as.numeric(deviance(m)),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    varcorr = varcorr(m),
    theta = as.numeric(getME(m, "theta")),
    singular = isSingular(m),
    nobs = nobs(m)
  )
}
lrt <- function(small, big, refit = TRUE) {
  a <- anova(small, big, refit = refit)
  list(chisq = a$Chisq[2], df = a$Df[2], p = a[["Pr(>Chisq)"]][2])
}

for (path in Sys.glob(file.path(dir, "lme4_data_*.csv"))) {
  name <- sub("^lme4_data_(.*)\\.csv$", "\\1", basename(path))
  d <- read.csv(path, stringsAsFactors = FALSE)
  d$order <- factor(d$order, levels = unique(c(baseline, d$order)))
  d$family <- factor(d$family, levels = unique(d$family))
  d$seed <- factor(d$seed)
  d$language <- factor(d$language)
  fit <- function(f, REML) lmer(f, data = d, REML = REML, control = ctrl)
  rand <- "(1|seed) + (1|seed:order) + (1|language)"
  full_ml <- fit(as.formula(paste("score ~ order * family +", rand)), FALSE)
  add_ml <- fit(as.formula(paste("score ~ order + family +", rand)), FALSE)
  fam_ml <- fit(as.formula(paste("score ~ family +", rand)), FALSE)
  f_full <- as.formula(paste("score ~ order * family +", rand))
  full_reml <- if (has_lmertest) {
    lmerTest::lmer(f_full, data = d, REML = TRUE, control = ctrl)
  } else {
    fit(f_full, TRUE)
  }
  trap_full <- fit(score ~ order * family + (1|seed) + (1|language), FALSE)
  trap_fam <- fit(score ~ family + (1|seed) + (1|language), FALSE)
  by_terms <- paste(sprintf("(0 + dummy(order, '%s') | seed)", levels(d$order)), collapse = " + ")
  by_reml <- fit(as.formula(paste("score ~ order * family + (1|seed) +", by_terms, "+ (1|language)")), TRUE)

  # Cell means of observed order x family cells, and pairwise contrasts per family.
  observed <- as.data.frame(table(order = d$order, family = d$family))
  observed <- observed[observed$Freq > 0, c("order", "family")]
  beta <- fixef(full_reml)
  X <- model.matrix(~ order * family, observed)[, names(beta), drop = FALSE]
  V <- as.matrix(vcov(full_reml))
  lt <- if (has_lmertest) full_reml else NULL
  sat <- function(L) {
    if (is.null(lt)) return(NA_real_)
    lmerTest::contest1D(lt, L, ddf = "Satterthwaite")$df
  }
  emmeans <- lapply(seq_len(nrow(observed)), function(i) list(
    order = as.character(observed$order[i]), family = as.character(observed$family[i]),
    estimate = sum(X[i, ] * beta), se = sqrt(drop(X[i, ] %*% V %*% X[i, ])), df = sat(X[i, ])))
  contrasts <- list()
  lv <- levels(d$order)
  for (fam in levels(d$family)) {
    for (i in seq_along(lv)) for (j in seq_along(lv)) if (j > i) {
      ri <- which(observed$order == lv[i] & observed$family == fam)
      rj <- which(observed$order == lv[j] & observed$family == fam)
      if (length(ri) == 0 || length(rj) == 0) next
      L <- X[rj, ] - X[ri, ]
      contrasts[[length(contrasts) + 1]] <- list(
        family = fam, term = paste(lv[j], "vs", lv[i]), estimate = sum(L * beta),
        se = sqrt(drop(L %*% V %*% L)), df = sat(L))
    }
  }
  coef_df <- if (is.null(lt)) NULL else as.list(summary(lt)$coefficients[, "df"])

  out <- list(
    dataset = name,
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    lmerTest = if (has_lmertest) as.character(packageVersion("lmerTest")) else NA,
    ml = summary_of(full_ml),
    reml = c(summary_of(full_reml), list(satterthwaite_df = coef_df)),
    reml_by_order = summary_of(by_reml),
    lrt = list(
      order = lrt(fam_ml, full_ml),
      order_family = lrt(add_ml, full_ml),
      trap_order = lrt(trap_fam, trap_full),
      run_variance = lrt(full_reml, by_reml, refit = FALSE)
    ),
    emmeans = emmeans,
    contrasts = contrasts
  )
  write_json(out, file.path(dir, paste0("lme4_", name, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat("wrote", file.path(dir, paste0("lme4_", name, ".json")), "\n")
}
