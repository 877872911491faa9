"""The model summary at the start of a fit: Lightning's, two levels deep (each layer's sizes and parameters, as
Keras's ``summary()``), with each layer's inputs where the net branches (Keras's "Connected to")."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelSummary


class LayerSummary(ModelSummary):
    def __init__(self, max_depth: int = 2) -> None:
        self.inputs: dict[str, str] = {}  # filled at the fit's start; Lightning hands it to summarize()
        super().__init__(max_depth=max_depth, inputs=self.inputs)

    def on_fit_start(self, trainer, pl_module) -> None:
        net = getattr(pl_module, "net", None)
        self.inputs.clear()
        if getattr(net, "plan", None) is not None:  # a graph: a chain's inputs go without saying
            self.inputs.update({f"net.{layer.name}": ", ".join(layer.inputs) for layer in net.layers})
        super().on_fit_start(trainer, pl_module)

    @staticmethod
    def summarize(summary_data, *totals, inputs=None, **kwargs) -> None:
        """Lightning's table (its totals as this version of Lightning passes them), with an "Inputs" column."""
        if inputs:
            names = dict(summary_data).get("Name", [])
            at = next((i + 1 for i, (header, _) in enumerate(summary_data) if header == "Type"), len(summary_data))
            summary_data = [*summary_data[:at], ("Inputs", [inputs.get(name, "") for name in names]),
                            *summary_data[at:]]
        ModelSummary.summarize(summary_data, *totals, **kwargs)
