import sys, torch, json
torch.set_num_threads(1)
from sciflow.data.scattering import load_walk_dataset
from sciflow.methods.scattering.model import ScatteringCVAEs
from sciflow.methods.scattering.survival_fit import fit_len_survival
steps, out = int(sys.argv[1]), sys.argv[2]
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 3e-3
walks = load_walk_dataset(["runs/scattering/walks_sv128"])
m = ScatteringCVAEs.load("models/scattering")
new = fit_len_survival(m, walks, steps=steps, batch_size=4096, draws=4, lr=lr, seed=5, progress=False)
print(json.dumps(new.info["survival_fit"]))
new.save(out)
