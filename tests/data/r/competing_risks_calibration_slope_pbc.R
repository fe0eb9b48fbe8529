# Oracle for tests/test_competing_risks_calibration.py (calibration_slope_competing) and
# tests/test_internal_validation_calibration_slope (the bootstrap optimism of the slope, the
# cirrhosis-sarcopenia pattern), run in R on the SAME resamples as studyval.
#
# R 4.2.2, survival 3.5-3, riskRegression 2022.11.28, cmprsk 2.2-11. Run from the repository root:
#   Rscript tests/data/r/competing_risks_calibration_slope_pbc.R
# Data: tests/data/pbc_competing.csv (survival::pbc, 312 randomised patients; status 0 =
# censored, 1 = transplant, 2 = death).
# Resamples: tests/data/internal_validation_pbc_indices.csv (20 resamples, 1-based rows),
#   resample_indices(n_rows=312, n_resamples=20, seed=20240918)   (numpy PCG64)
# Model: CSC(Hist(time, status) ~ lbili + age) (one Cox model per cause, Efron ties);
# prediction: cumulative incidence of death by 1826 days (predictRisk, product.limit = TRUE: the exponential form gives risks above 1 here);
# measure: calibration slope = crr (gtol = 1e-12: the default 1e-6 stops early) coefficient of log(-log(1 - p)) for death (failcode 2),
# follow-up administratively censored at 1826 days (van Geloven et al. 2022).
suppressMessages({
  library(survival)
  library(riskRegression)
  library(cmprsk)
})
options(digits = 17)
d <- read.csv("tests/data/pbc_competing.csv")
d$lbili <- log(d$bili)
idx <- as.matrix(read.csv("tests/data/internal_validation_pbc_indices.csv", header = FALSE))
h <- 1826

slope <- function(time, status, p, censor = TRUE) {
  if (censor) {
    status <- ifelse(time > h, 0, status)
    time <- pmin(time, h)
  }
  f <- crr(time, status, cov1 = log(-log(1 - p)), failcode = 2, cencode = 0, gtol = 1e-12)
  c(coef = unname(f$coef), se = sqrt(f$var[1, 1]))
}
measure <- function(fit, data) {
  p <- as.numeric(predictRisk(fit, newdata = data, times = h, cause = 2, product.limit = TRUE))
  slope(data$time, data$status, p)[["coef"]]
}

fit0 <- CSC(Hist(time, status) ~ lbili + age, data = d)
p0 <- as.numeric(predictRisk(fit0, newdata = d, times = h, cause = 2, product.limit = TRUE))
# (the tests recompute p0 in Python; printed here as a check, no file is written)
cat(sprintf("p0: n %d, sum %.17g, range %.17g %.17g\n", length(p0), sum(p0), min(p0), max(p0)))
cat(sprintf("apparent censored: coef %.17g se %.17g\n", slope(d$time, d$status, p0)[1],
            slope(d$time, d$status, p0)[2]))
cat(sprintf("apparent uncensored: coef %.17g se %.17g\n", slope(d$time, d$status, p0, FALSE)[1],
            slope(d$time, d$status, p0, FALSE)[2]))
apparent <- measure(fit0, d)
train <- test <- numeric(nrow(idx))
for (b in seq_len(nrow(idx))) {
  db <- d[idx[b, ], ]
  fb <- CSC(Hist(time, status) ~ lbili + age, data = db)
  train[b] <- measure(fb, db)
  test[b] <- measure(fb, d)
}
optimism <- mean(train - test)
cat(sprintf("calibration_slope: (%s),\n", paste(sprintf("%.17g", c(apparent, mean(train),
    mean(test), optimism, apparent - optimism)), collapse = ", ")))
# Without the censoring at the horizon, crr's default gtol = 1e-6 stops early; tighter:
f <- crr(d$time, d$status, cov1 = log(-log(1 - p0)), failcode = 2, cencode = 0, gtol = 1e-12)
cat(sprintf("apparent uncensored, gtol 1e-12: coef %.17g se %.17g\n", f$coef, sqrt(f$var[1, 1])))
