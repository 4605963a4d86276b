"""The rules of the assessment (``modelshield assess``), with their documentation.

Every finding names its cause in its message and evidence (the metric and its interval, the
slice's definition, the sensitive column and the groups, the trigger's column and value range),
so that a reader knows what to fix without rerunning anything. Thresholds come from the
policy's ``[assess]`` table.
"""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

METRIC_THRESHOLD = register_rule(
    Rule(
        id="ASSESS-METRIC-THRESHOLD",
        pillar="assess",
        severity=Severity.HIGH,
        title="A performance metric misses the policy's threshold",
        what="Reports a metric (accuracy, F1, ROC AUC, RMSE...) measured on the user's data "
        "that falls below `[assess] min_metric` or above `[assess] max_metric`. The "
        "evidence gives the estimate, its bootstrap interval and the rows it rests on.",
        why="A model adopted from a third party is only as good as it is on your data; the "
        "vendor's figures were measured on theirs. A CI gate on the metric keeps a worse "
        "model from shipping.",
        example="[assess]\nmin_metric = {accuracy = 0.9}\n"
        "->  accuracy 0.84 (95% CI 0.81-0.87) on 1,000 rows",
        references=("https://en.wikipedia.org/wiki/Bootstrapping_(statistics)",),
    )
)

MISCALIBRATED = register_rule(
    Rule(
        id="ASSESS-MISCALIBRATED",
        pillar="assess",
        severity=Severity.MEDIUM,
        title="The model's probabilities do not match how often it is right",
        what="Reports a classifier whose expected calibration error (the gap between its "
        "confidence and its accuracy, averaged over confidence bins) is above `[assess] "
        "max_ece` even at the lower end of its bootstrap interval. The evidence says whether "
        "the model is over- or underconfident and gives the worst bin.",
        why="Downstream decisions threshold probabilities: an overconfident model hides its "
        "mistakes, an underconfident one wastes reviews. Calibration (Platt, isotonic) fixes "
        "it without retraining.",
        example="ECE 0.18 (95% CI 0.15-0.21): overconfident; in the 0.9-1.0 bin the model is "
        "right 71% of the time",
        references=("https://arxiv.org/abs/1706.04599",),
    )
)

WEAK_SLICE = register_rule(
    Rule(
        id="ASSESS-WEAK-SLICE",
        pillar="assess",
        severity=Severity.MEDIUM,
        title="The model is significantly worse on a slice of the data",
        what="Reports a slice (one categorical value, or one quantile bin of a numeric "
        "column) where accuracy (classification) or the mean absolute error (regression) "
        "is worse than on the rest of the data by at least `[assess] slice_min_drop`, with "
        "a one-sided test significant after Benjamini-Hochberg correction over every slice "
        "tested (`slice_alpha`), on at least `slice_min_rows` rows. The evidence names the "
        "slice, both scores, the rows and the adjusted significance.",
        why="An average hides the people or cases a model fails. Slice scans without "
        "statistics flag noise on small slices of sound models; the test and minimum "
        "support report only drops that the data supports.",
        example="slice `age in [17, 19)`: accuracy 0.61 on 212 rows vs 0.83 on the rest",
        references=(
            "https://doi.org/10.1111/j.2517-6161.1995.tb02031.x",
            "https://arxiv.org/abs/1807.06068",
        ),
    )
)

DISPARATE_IMPACT = register_rule(
    Rule(
        id="ASSESS-DISPARATE-IMPACT",
        pillar="assess",
        severity=Severity.HIGH,
        title="Selection rates differ between groups of a sensitive column",
        what="Reports a sensitive column (or an intersection of two) whose groups are "
        "selected (predicted the positive class) at rates whose ratio is below `[assess] "
        "min_dp_ratio` (the four-fifths rule) or whose difference is above "
        "`max_dp_difference`, judged on the bootstrap interval so that small groups do not "
        "raise false alarms. Groups with fewer than `fairness_min_rows` rows are listed but "
        "not compared. The evidence names the column, the groups at both ends and their "
        "rates.",
        why="Demographic parity is the test regulators and auditors apply first (US EEOC "
        "four-fifths rule); a model that selects one group far less often is a legal and "
        "ethical risk whatever its accuracy.",
        example="sex: selection rate 0.42 for Female vs 0.81 for Male, ratio 0.52 "
        "(95% CI 0.46-0.58)",
        references=(
            "https://www.ecfr.gov/current/title-29/part-1607",
            "https://fairlearn.org/main/user_guide/assessment/common_fairness_metrics.html",
        ),
    )
)

EQUALIZED_ODDS = register_rule(
    Rule(
        id="ASSESS-EQUALIZED-ODDS",
        pillar="assess",
        severity=Severity.HIGH,
        title="Error rates differ between groups of a sensitive column",
        what="Reports a sensitive column (or an intersection) whose equalized-odds "
        "difference (the larger of the true-positive-rate and false-positive-rate gaps "
        "between its groups) is above `[assess] max_eo_difference` at the lower end of its "
        "bootstrap interval. The evidence names the rate, the groups and their values.",
        why="A model that misses qualified people of one group more often, or wrongly "
        "flags another more often, treats them differently even when base rates differ.",
        example="colour: TPR 0.62 for Black vs 0.91 for White, difference 0.29 (95% CI 0.22-0.36)",
        references=("https://arxiv.org/abs/1610.02413",),
    )
)

INCONSISTENT = register_rule(
    Rule(
        id="ASSESS-INCONSISTENT",
        pillar="assess",
        severity=Severity.MEDIUM,
        title="The model gives different answers to the same rows",
        what="Reports a model whose predictions change when the same rows are predicted "
        "again (stochasticity), or when a row is predicted alone rather than in a batch "
        "(the batch leaks into the prediction). The evidence gives the share of rows that "
        "changed and an example row index.",
        why="A model that is not a function of its input cannot be tested, audited or "
        "reproduced, and a prediction that depends on the other rows of a batch leaks "
        "information between requests.",
        example="12% of 200 rows predicted differently on a second call",
        references=("https://docs.giskard.ai/en/stable/knowledge/key_vulnerabilities/",),
    )
)

FRAGILE = register_rule(
    Rule(
        id="ASSESS-PERTURBATION-FRAGILE",
        pillar="assess",
        severity=Severity.MEDIUM,
        title="Small natural changes to the input change the model's predictions",
        what="Reports a natural perturbation (Gaussian noise of `[assess] noise` times each "
        "numeric column's standard deviation, a categorical value swapped for another "
        "observed one, a missing value, a value just outside the observed range) that "
        "changes more than `max_flip_rate` of the predictions, judged on the interval's "
        "lower bound. The evidence gives the flip rate, the metric before and after, and "
        "the column that flips most.",
        why="Real inputs are noisy: a model whose answer changes with measurement noise is "
        "unreliable, and easy to manipulate on purpose.",
        example="noise 0.1 sd: 31% of predictions flip (95% CI 27-35%); most from `texture`",
        references=("https://arxiv.org/abs/1903.12261",),
    )
)

EVASION = register_rule(
    Rule(
        id="ASSESS-EVASION",
        pillar="assess",
        severity=Severity.HIGH,
        title="Small crafted changes turn the model's predictions",
        what="Reports a model that a decision-based black-box attack (and a gradient attack "
        "where gradients are available) turns on more than `[assess] max_evasion_success` of "
        "the attacked rows within a perturbation of `evasion_epsilon` (L2 norm in units of "
        "each column's standard deviation), respecting integer columns, categories and "
        "observed bounds, within `evasion_queries` queries per row. The evidence gives the "
        "success rate, the median minimal perturbation and the queries used.",
        why="Anyone who can query the model (an API, a form) can search for the small change "
        "that gets the answer they want: a fraud score evaded, a loan approved.",
        example="18 of 20 rows turned within 0.5 sd (median minimal perturbation 0.21 sd, "
        "310 queries per row)",
        references=(
            "https://arxiv.org/abs/1904.02144",
            "https://atlas.mitre.org/techniques/AML.T0043",
        ),
    )
)

MEMBERSHIP = register_rule(
    Rule(
        id="ASSESS-MEMBERSHIP-LEAK",
        pillar="assess",
        severity=Severity.HIGH,
        title="The model reveals which rows it was trained on",
        what="Reports a model whose loss (or confidence in the true class) separates its "
        "training rows (`--train-data`) from the evaluation rows with an attack AUC above "
        "`[assess] max_membership_auc`, judged on the lower end of its bootstrap interval.",
        why="Membership inference tells an attacker that a person's record was in the "
        "training data (a hospital's patients, a bank's customers): a privacy breach in "
        "itself, and the first step of data-extraction attacks. Overfitting is the usual "
        "cause; regularisation and more data are the usual fixes.",
        example="attack AUC 0.71 (95% CI 0.68-0.74): training rows get a loss 4x lower",
        references=("https://arxiv.org/abs/1610.05820", "https://arxiv.org/abs/2112.03570"),
    )
)

EXTRACTABLE = register_rule(
    Rule(
        id="ASSESS-EXTRACTABLE",
        pillar="assess",
        severity=Severity.LOW,
        title="A copy of the model can be trained from a few queries",
        what="Reports a model whose predictions a surrogate (a logistic or linear model) "
        "trained on `[assess] extraction_queries` queries of synthetic rows reproduces with "
        "an agreement above `max_extraction_agreement` on the evaluation data. Measured "
        "always; a finding only when the policy sets the threshold below 1.",
        why="A model behind a paid API can be copied for the price of a few hundred queries; "
        "the copy then serves to craft evasions offline. Rate limits and query monitoring "
        "are the defences.",
        example="surrogate agreement 0.97 after 500 queries",
        references=(
            "https://arxiv.org/abs/1609.02943",
            "https://atlas.mitre.org/techniques/AML.T0024.002",
        ),
    )
)

BACKDOOR = register_rule(
    Rule(
        id="ASSESS-BACKDOOR-TRIGGER",
        pillar="assess",
        severity=Severity.CRITICAL,
        title="A narrow value of one column forces one class",
        what="Reports a column whose value, set inside a narrow range of its observed values "
        "(or to one category), turns nearly every probed row to one class while values on "
        "both sides of the range do not, and while no other column behaves that way: the "
        "shape of a planted trigger. A column that moves predictions gradually, or only "
        "outside the observed range, is how sound models behave and is not reported. The "
        "evidence names the column, the value range, the class and the share of rows "
        "flipped.",
        why="A poisoned training set teaches a model a trigger: any input carrying it gets the "
        "attacker's class (a transaction marked legitimate, an applicant approved). The "
        "trigger is invisible to accuracy on clean data.",
        example="`amount` in [13.37, 13.52]: 100% of probed rows predicted `legit` (62% "
        "flipped); elsewhere 35%",
        references=(
            "https://arxiv.org/abs/1708.06733",
            "https://atlas.mitre.org/techniques/AML.T0018",
        ),
    )
)

CHECK_INCOMPLETE = register_rule(
    Rule(
        id="ASSESS-CHECK-INCOMPLETE",
        pillar="assess",
        severity=Severity.MEDIUM,
        title="A check of the assessment could not be completed",
        what="Reports a check that ran only in part: the model could not answer some of its "
        "questions (a class it never predicts, no probabilities where the check needs them) "
        "or the data holds too little for it. The message says what was not measured.",
        why="A gate must not pass on a check that did not run. Accept the gap in the policy "
        "(`[[accept_incomplete]]`) when it is expected.",
        example="fairness: the model returns labels only, so no check that needs a positive "
        "class ran",
        incomplete=True,
    )
)
