# Oracle for tests/test_internal_validation.py: Harrell's bootstrap optimism of a Cox
# model on survival::lung, run in R on the SAME resamples as studyval.
#
# R 4.2.2, survival 3.5-3, rms 6.5-0, riskRegression 2022.11.28. Run from the repository
# root:  Rscript tests/data/r/internal_validation_lung.R
#
# Data: tests/data/lung.csv (survival::lung, public domain), the 227 complete cases of
# age, sex, ph.ecog; status recoded 1/2 -> 0/1.
# Resamples: tests/data/internal_validation_lung_indices.csv, one line per resample, 1-based
# row numbers of the complete-case data, written by
#   resample_indices(n_rows=227, n_resamples=50, seed=20240917)   (numpy PCG64)
#
# The algorithm (Harrell, Lee & Mark 1996; what rms::validate does, spelled out): refit the
# Cox model on resample b; measure it on the resample (training) and on the original data
# (test); optimism = mean(training - test); corrected = apparent - optimism.
# Cox fits are iterated to eps = 1e-11 (studyval: 1e-12; R's default is 1e-9).
suppressMessages({
  library(survival)
  library(riskRegression)
})
options(digits = 17)
d <- read.csv("tests/data/lung.csv")
d$status <- d$status - 1
d <- d[complete.cases(d[, c("age", "sex", "ph.ecog")]), ]
rownames(d) <- NULL
idx <- as.matrix(read.csv("tests/data/internal_validation_lung_indices.csv", header = FALSE))
h <- 365
ctl <- coxph.control(eps = 1e-11, iter.max = 100)

measures <- function(fit, data) {
  lp <- predict(fit, newdata = data, type = "lp")          # centred: no C or slope changes
  risk <- 1 - summary(survfit(fit, newdata = data), times = h, extend = TRUE)$surv[1, ]
  c_h <- concordance(Surv(time, status) ~ lp, data = data, reverse = TRUE)$concordance
  c_u <- concordance(Surv(time, status) ~ lp, data = data, reverse = TRUE,
                     timewt = "n/G2", ymax = h)$concordance
  slope <- coef(coxph(Surv(data$time, data$status) ~ lp, control = ctl))[[1]]
  sc <- Score(list(r = risk), formula = Hist(time, status) ~ 1, data = data, times = h,
              metrics = c("auc", "brier"), summary = "ipa", se.fit = FALSE)
  br <- sc$Brier$score
  c(harrell_c = c_h, somers_dxy = 2 * c_h - 1, calibration_slope = slope, uno_c = c_u,
    auc_horizon = sc$AUC$score$AUC[1], brier = br$Brier[br$model == "r"],
    ipa = br$IPA[br$model == "r"])
}

fit0 <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d, control = ctl)
apparent <- measures(fit0, d)
train <- test <- matrix(NA_real_, nrow(idx), length(apparent))
for (b in seq_len(nrow(idx))) {
  db <- d[idx[b, ], ]
  fb <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = db, control = ctl)
  train[b, ] <- measures(fb, db)
  test[b, ] <- measures(fb, d)
}
optimism <- colMeans(train - test)
out <- data.frame(measure = names(apparent), apparent = apparent,
                  training = colMeans(train), test = colMeans(test), optimism = optimism,
                  corrected = apparent - optimism, optimism_sd = apply(train - test, 2, sd))
for (i in seq_len(nrow(out))) {
  cat(sprintf("%s: (%s),\n", out$measure[i],
              paste(sprintf("%.17g", unlist(out[i, -1])), collapse = ", ")))
}
