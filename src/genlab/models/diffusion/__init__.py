"""Since 2020, iterative: denoising diffusion (Ho et al. 2020; DDIM, Song et al. 2021) and flow
matching / rectified flow (Lipman et al. 2023; Liu et al. 2023). A network learns to undo a
fixed noising process; sampling runs it for a number of steps chosen at sampling time, and the
likelihood is a variational bound (diffusion) or an ODE estimate (flow matching).

The pieces stand apart, as in k-diffusion: ``schedules`` (the forward process in closed form),
``unet`` (the network), ``objectives`` (the training losses), ``samplers`` and ``ode`` (the
solvers, which take any denoiser or velocity callable, network or exact oracle), ``likelihood``
(the bound and the ODE estimate), and ``diffusion`` (the registered family)."""
