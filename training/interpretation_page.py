"""The interpretation part of the run page: fidelity, the four aspects, contribution maps.

HTML only; the figures are drawn by ``tfsal.explain.report_figures``. The page reads
fully without JavaScript: the one script only swaps the pre-rendered PNG of the
feature group the reader picks.
"""

import html
import json

# Swaps every ".group-map" image to the picked group; records nothing, fetches nothing.
_PICKER_SCRIPT = """
<script>
const groupFiles = JSON.parse(document.getElementById("group-files").textContent);
const groupLimits = JSON.parse(document.getElementById("group-limits").textContent);
const picker = document.getElementById("group-picker");
picker.addEventListener("change", () => {
  document.querySelectorAll("img.group-map").forEach((img) => {
    img.src = groupFiles[picker.value][Number(img.dataset.image)];
    img.alt = picker.value + " contribution, image " + img.dataset.image;
  });
  document.querySelectorAll(".group-limit").forEach((span) => {
    span.textContent = groupLimits[picker.value];
  });
});
</script>
"""


# Why a decoder readout lacks the per-group numbers; completed by each section.
NOT_ADDITIVE = (
    "This explainable model's <code>decoder</code> readout passes the reconstructions "
    "through the deep model's frozen, non-linear decoder: its saliency is not a sum of "
    "per-group terms"
)


def _figure(src: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img class="wide" src="{html.escape(src)}" alt="{html.escape(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def fidelity_table(fidelity: dict) -> str:
    """Per tap: stride, channels, validation R² and mean channel CC; saliency vs parent."""
    rows = "".join(
        f"<tr><th>{html.escape(tap)}</th><td>1/{s['stride']}</td><td>{s['channels']}</td>"
        f"<td>{s['r2']:.3f}</td><td>{s['mean_cc']:.3f}</td></tr>"
        for tap, s in fidelity["taps"].items()
    )
    saliency = fidelity["saliency"]
    return (
        "<table><tr><th>tap</th><th>stride</th><th>channels</th><th>validation R²</th>"
        f"<th>mean channel CC</th></tr>{rows}</table>"
        f"<p>Explainable saliency against the parent's on {saliency.get('images', '?')} "
        f"validation images: CC {saliency['cc']:.3f}, KLD {saliency['kld']:.3f}.</p>"
    )


def r2_drop_text(numbers: dict) -> str:
    """What the middle column of the importance figure measured, and its negatives."""
    if numbers.get("r2_drop_method") == "refit":
        text = (
            "Middle: the validation R² that only the group explains: the ridge "
            "reconstruction refitted without the group (exactly, from the derivation's "
            "normal equations on the training images) loses this much R² on the "
            "validation images. "
        )
        why = (
            "it is slightly negative where the group's weights fit only noise of the "
            "training images, so leaving it out generalises a little better"
        )
    else:
        text = (
            "Middle: how much R² on these images falls when the group's features are set "
            "to their mean in the fitted reconstruction, <em>not refitted</em> (this run "
            "kept no normal equations to refit from; derive it again with <code>python -m "
            "training.derive RUN_DIR</code> for the refitted drop): it measures how much "
            "the fitted weights lean on the group, not what only the group explains. "
        )
        why = (
            "the weights were fitted on the training images together with the other "
            "groups' (correlated groups get large weights of opposite signs), and on these "
            "few other images removing one can bring the reconstruction closer: no sign "
            "that the group hurts"
        )
    negative = sorted(
        f"{tap} {html.escape(str(label))} ({values['r2_drop']:+.3f})"
        for tap, aspects in numbers["importance"].items()
        for labels in aspects.values()
        for label, values in labels.items()
        if values["r2_drop"] < 0
    )
    if negative:
        text += f"Below zero here: {', '.join(negative)}; {why}. "
    return text


def interpretation_section(rendered: dict, numbers: dict) -> str:
    """The HTML of the interpretation sections.

    Args:
        rendered: ``tfsal.explain.report_figures.render_figures``'s result.
        numbers: the analysis numbers.
    """
    files = rendered["files"]
    count = len(files["reconstructions"])
    ids = [html.escape(i) for i in numbers["image_ids"]]
    parts = [
        "<h2>Explainable model: fidelity to the deep model</h2>",
        "<p>Each tap (an intermediate layer of the deep model) is rebuilt as a linear "
        "combination of log-Gabor filter responses of the image. R² is the share of the "
        "activations' variance the reconstruction explains (1 is perfect).</p>",
        fidelity_table(numbers["fidelity"]),
        "<h2>1. Activation maps and their reconstructions</h2>",
        "<p>The image (left), and one row per tap: the channel that varies most on the "
        "image, as the deep model's activation (middle) and its log-Gabor reconstruction "
        "(right), on one colour scale. Each reconstruction gives its R² on the shown "
        "channel of this image and the tap's validation R² over all its channels and "
        "validation images.</p>",
    ]
    parts += [
        _figure(name, f"activations and reconstructions, {ids[i]}", f"Validation image {ids[i]}.")
        for i, name in enumerate(files["reconstructions"])
    ]
    linear = numbers.get("readout", "linear") == "linear"
    parts += [
        "<h2>2. Which filters explain each layer and the salient regions</h2>",
        "<p>Left: each colour channel's, scale's and orientation's share of the "
        "reconstruction weights (weight magnitude × spread of the standardised feature). "
        + r2_drop_text(numbers)
        + (
            "Right: how much the saliency's CC with the deep model falls when the group's "
            "contributions are removed (below zero: the saliency matches the deep model "
            "better without the group). "
            if linear
            else NOT_ADDITIVE + ", so the drop in saliency CC per group is not measured. "
        )
        + "Scale 0 is the finest scale.</p>",
        _figure(files["importance"], "feature importance", "Importance per tap."),
        "<h2>3. Positional (centre) bias</h2>",
        "<p>"
        + ("Left: the" if linear else "The")
        + " share of each tap's activation and reconstruction explained by centred "
        "Gaussian maps alone (1: a pure centre bias). "
        + (
            "Right: the centre prior's share of the saliency logits' variance, and how well "
            "the prior alone and the image content alone match the deep model's saliency "
            "(CC).</p>"
            if linear
            else NOT_ADDITIVE + " and has no separate centre prior, so the prior's share of "
            "the saliency is not measured.</p>"
        ),
        _figure(files["centre_bias"], "centre bias", "Centre bias."),
        "<h2>4. Colour processing</h2>",
    ]
    colour = numbers["colour_transform"]
    if colour is None:
        parts.append(
            "<p>The deep model has no convolution on the RGB image to compare (its "
            "first layer does not read 3 channels).</p>"
        )
    else:
        strengths = ", ".join(f"{s:.2f}" for s in colour["axis_strength"])
        parts += [
            f"<p>The colour axes of the first convolution <code>{html.escape(colour['layer'])}"
            f"</code> (singular vectors of its weights over RGB; relative strengths "
            f"{strengths}) compared with YUV, opponent and Lab (linearised at mid-grey): "
            "0° means the model separates luminance from chroma as the reference does. "
            "Which colour channels each tap relies on is the top row of section 2.</p>",
            _figure(files["colour"], "colour axes", "Principal angles."),
        ]
    if not linear:
        parts += [
            "<h2>Contribution maps</h2>",
            f"<p>Not available: {NOT_ADDITIVE}, so no map per feature group adds up to it. "
            "A <code>linear</code> readout has them: derive one with <code>python -m "
            "training.derive RUN_DIR --readout linear</code>.</p>",
            '<p>Every plotted number is in <a href="report.json">report.json</a>.</p>',
        ]
        return "\n".join(parts)
    parts += [
        "<h2>Contribution maps: which feature groups made each region salient</h2>",
        "<p>The explainable model's saliency logits are an exact sum of one map per "
        "feature group plus the centre prior. Red raises saliency, blue lowers it.</p>",
    ]
    parts.append(
        _figure(
            files["contributions"],
            "contribution maps",
            f"Validation images {', '.join(ids)}, top to bottom; one colour scale per column.",
        )
    )
    groups = rendered["groups"]
    options = "".join(
        f'<option value="{html.escape(label)}">{html.escape(label)}</option>' for label in groups
    )
    first = next(iter(groups))
    maps = "".join(
        f'<figure><img class="group-map" data-image="{i}" src="{html.escape(groups[first][i])}" '
        f'alt="{html.escape(first)} contribution, image {i}">'
        f"<figcaption>Validation image {ids[i]}.</figcaption></figure>"
        for i in range(count)
    )
    limits = {
        label: f"{entry['limit']:.3g}" for label, entry in rendered["plotted"]["groups"].items()
    }
    scale = (
        f'<p class="colour-bar">Colour scale, the same for every image of the group: '
        f'−<span class="group-limit">{limits[first]}</span> '
        f'<img src="{html.escape(files["group_colour_bar"])}" '
        'alt="colour bar, blue (lowers) to red (raises) saliency"> '
        f'+<span class="group-limit">{limits[first]}</span> logit '
        "contribution (white is 0).</p>"
    )
    parts += [
        "<h3>One feature group at a time</h3>",
        f'<p><label>Feature group: <select id="group-picker">{options}</select></label> '
        f"(shown: {html.escape(first)} without JavaScript)</p>",
        scale,
        f'<div class="group-maps">{maps}</div>',
        f'<script type="application/json" id="group-files">{json.dumps(groups)}</script>',
        f'<script type="application/json" id="group-limits">{json.dumps(limits)}</script>',
        _PICKER_SCRIPT,
        '<p>Every plotted number is in <a href="report.json">report.json</a>.</p>',
    ]
    return "\n".join(parts)
