# Oracle for tests/test_internal_validation.py (Monte Carlo comparison): rms::validate on
# its own resamples (R's sample(), which numpy cannot reproduce), B = 2000.
#
# R 4.2.2, survival 3.5-3, rms 6.5-0. Run from the repository root:
#   Rscript tests/data/r/internal_validation_lung_validate.R
# Data: tests/data/lung.csv (survival::lung, public domain), 227 complete cases of age, sex,
# ph.ecog; status recoded 1/2 -> 0/1. rms reports Dxy and Slope; C = (Dxy + 1) / 2.
suppressMessages(library(rms))
options(digits = 17)
d <- read.csv("tests/data/lung.csv")
d$status <- d$status - 1
d <- d[complete.cases(d[, c("age", "sex", "ph.ecog")]), ]
set.seed(20240917)
f <- cph(Surv(time, status) ~ age + sex + ph.ecog, data = d, x = TRUE, y = TRUE)
v <- validate(f, B = 2000, dxy = TRUE)
for (m in c("Dxy", "Slope")) {
  cat(sprintf("%s: (%s),\n", m, paste(sprintf("%.17g", v[m, ]), collapse = ", ")))
}
