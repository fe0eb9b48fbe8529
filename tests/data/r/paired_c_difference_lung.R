# Oracle for tests/test_paired_bootstrap.py: paired bootstrap of the difference in Harrell's C
# between two Cox models on survival::lung.
#
# R 4.2.2, survival 3.5-3, boot 1.3-28.1. Run from the repository root:
#   Rscript tests/data/r/paired_c_difference_lung.R
# Data: tests/data/lung.csv (survival::lung, public domain), the 227 complete cases of age,
# sex, ph.ecog; status recoded 1/2 -> 0/1. Model a: coxph(~ age + sex + ph.ecog); model b:
# coxph(~ age + sex); risk = the linear predictor.
#
# (1) Shared resamples: tests/data/internal_validation_lung_indices.csv (50 resamples, 1-based
#     rows, numpy PCG64 seed 20240917, see tests/data/r/internal_validation_lung.R). For each
#     resample, survival::concordance of each model's linear predictor on d[idx, ]; the
#     replicates are written to tests/data/paired_c_difference_lung_R.csv.
# (2) BCa on the same replicates: boot::boot.ci(type = "bca") with t = studyval's 2000
#     replicates of the difference (tests/data/paired_c_difference_lung_replicates.csv,
#     harrell_c_difference(..., n_resamples=2000, seed=20240917)), t0 = the difference on the
#     data and L = the leave-one-out jackknife influence values (empinf(type = "jack") is the
#     same formula), as studyval's BCa uses the leave-one-out jackknife.
suppressMessages({
  library(survival)
  library(boot)
})
options(digits = 17)
d <- read.csv("tests/data/lung.csv")
d$status <- d$status - 1
d <- d[complete.cases(d[, c("age", "sex", "ph.ecog")]), ]
rownames(d) <- NULL
ctl <- coxph.control(eps = 1e-11, iter.max = 100)
d$lp_a <- predict(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d, control = ctl),
                  type = "lp")
d$lp_b <- predict(coxph(Surv(time, status) ~ age + sex, data = d, control = ctl), type = "lp")
cdiff <- function(data) {
  ca <- concordance(Surv(time, status) ~ lp_a, data = data, reverse = TRUE)$concordance
  cb <- concordance(Surv(time, status) ~ lp_b, data = data, reverse = TRUE)$concordance
  c(c_a = ca, c_b = cb, difference = ca - cb)
}
t0 <- cdiff(d)
cat(sprintf("data: (%s)\n", paste(sprintf("%.17g", t0), collapse = ", ")))

# (1) shared resamples
idx <- as.matrix(read.csv("tests/data/internal_validation_lung_indices.csv", header = FALSE))
reps <- t(apply(idx, 1, function(i) cdiff(d[i, ])))
write.csv(format(as.data.frame(reps), digits = 17), "tests/data/paired_c_difference_lung_R.csv",
          row.names = FALSE, quote = FALSE)

# (2) BCa with boot.ci on studyval's replicates
tt <- scan("tests/data/paired_c_difference_lung_replicates.csv", quiet = TRUE)
jack <- sapply(seq_len(nrow(d)), function(i) cdiff(d[-i, ])[["difference"]])
L <- (nrow(d) - 1) * (mean(jack) - jack)
b <- boot(d, function(data, i) 0, R = length(tt))   # a shell: t and t0 are replaced
b$t <- matrix(tt, ncol = 1)
b$t0 <- t0[["difference"]]
ci <- boot.ci(b, conf = 0.95, type = c("bca", "perc"), L = L)
cat(sprintf("bca: (%s)\n", paste(sprintf("%.17g", ci$bca[4:5]), collapse = ", ")))
cat(sprintf("perc: (%s)\n", paste(sprintf("%.17g", ci$percent[4:5]), collapse = ", ")))
cat(sprintf("a = %.17g, w = %.17g\n", sum(L^3) / (6 * sum(L^2)^1.5),
            qnorm(sum(tt < b$t0) / length(tt))))
