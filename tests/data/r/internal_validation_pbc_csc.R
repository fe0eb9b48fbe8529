# Oracle for tests/test_internal_validation.py (the generic mechanism with a caller's own
# fit / predict / measures): Harrell's bootstrap optimism of cause-specific Cox models that
# predict the cumulative incidence of death (transplant competing), as the
# cirrhosis-sarcopenia protocol does, run in R on the SAME resamples as studyval.
#
# R 4.2.2, survival 3.5-3, riskRegression 2022.11.28. Run from the repository root:
#   Rscript tests/data/r/internal_validation_pbc_csc.R
# Data: tests/data/pbc_competing.csv (survival::pbc, 312 randomised patients; status 0 =
# censored, 1 = transplant, 2 = death; see tests/test_survival_validation.py).
# Resamples: tests/data/internal_validation_pbc_indices.csv (20 resamples, 1-based rows),
#   resample_indices(n_rows=312, n_resamples=20, seed=20240918)   (numpy PCG64)
# Model: CSC(Hist(time, status) ~ lbili + age) (one Cox model per cause, Efron ties);
# prediction: cumulative incidence of death by 1826 days (predictRisk, product.limit = TRUE);
# measures: time-dependent AUC and Brier score at 1826 days for death with transplant
# competing (Score, cause = 2), and Harrell's C of the predicted incidence for death (deaths as
# events, transplants censored).
suppressMessages({
  library(survival)
  library(riskRegression)
})
options(digits = 17)
d <- read.csv("tests/data/pbc_competing.csv")
d$lbili <- log(d$bili)
idx <- as.matrix(read.csv("tests/data/internal_validation_pbc_indices.csv", header = FALSE))
h <- 1826

measures <- function(fit, data) {
  p <- as.numeric(predictRisk(fit, newdata = data, times = h, cause = 2, product.limit = TRUE))
  sc <- Score(list(r = p), formula = Hist(time, status) ~ 1, data = data, times = h, cause = 2,
              metrics = c("auc", "brier"), se.fit = FALSE, null.model = FALSE)
  data$p <- p
  c(td_auc = sc$AUC$score$AUC[1], brier = sc$Brier$score$Brier[1],
    harrell_c = concordance(Surv(time, status == 2) ~ p, data = data, reverse = TRUE)$concordance)
}

fit0 <- CSC(Hist(time, status) ~ lbili + age, data = d)
apparent <- measures(fit0, d)
train <- test <- matrix(NA_real_, nrow(idx), length(apparent))
for (b in seq_len(nrow(idx))) {
  db <- d[idx[b, ], ]
  fb <- CSC(Hist(time, status) ~ lbili + age, data = db)
  train[b, ] <- measures(fb, db)
  test[b, ] <- measures(fb, d)
}
optimism <- colMeans(train - test)
for (j in seq_along(apparent)) {
  cat(sprintf("%s: (%s),\n", names(apparent)[j], paste(sprintf("%.17g", c(apparent[j],
      mean(train[, j]), mean(test[, j]), optimism[j], apparent[j] - optimism[j])),
      collapse = ", ")))
}
