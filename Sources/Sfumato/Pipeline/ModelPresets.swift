/// The Stable Diffusion families Sfumato runs. A single-file checkpoint carries weights but no
/// config.json files: its family gives the configurations (those the family's diffusers repository
/// ships) and the settings it is meant to run with. A diffusers folder has its own configurations;
/// its family only chooses the defaults.
public enum ModelFamily: String, CaseIterable, Sendable {
    /// SD 1.x (runwayml/stable-diffusion-v1-5): CLIP ViT-L text encoder, 512x512, epsilon.
    case sd1 = "sd1"
    /// SD 2.x base (stabilityai/stable-diffusion-2-1-base): OpenCLIP ViT-H, 512x512, epsilon.
    case sd2Base = "sd2-512"
    /// SD 2.x (stabilityai/stable-diffusion-2-1): OpenCLIP ViT-H, 768x768, v-prediction, upcast attention.
    case sd2 = "sd2-768"
    /// SD-Turbo (stabilityai/sd-turbo): the SD 2.1 base network distilled for 1-4 steps without guidance.
    case sdTurbo = "sd-turbo"
    /// An LCM-distilled UNet (a `time_cond_proj_dim` guidance embedding, e.g. SimianLuo/LCM_Dreamshaper_v7).
    /// Only diffusers folders: a single file does not say which base it was distilled from.
    case lcm = "lcm"
    /// SDXL (stabilityai/stable-diffusion-xl-base-1.0): CLIP ViT-L and OpenCLIP ViT-bigG, 1024x1024, epsilon.
    case sdxl = "sdxl"
    /// SDXL-Turbo (stabilityai/sdxl-turbo): SDXL distilled for 1-4 steps without guidance at 512x512.
    case sdxlTurbo = "sdxl-turbo"

    /// The family of a diffusers model from its configurations: an LCM UNet has `time_cond_proj_dim`; an SDXL
    /// UNet the "text_time" added embedding (SDXL-Turbo: trailing spacing at 512x512, as stabilityai/sdxl-turbo ships it);
    /// an OpenCLIP text encoder (transformers' config says gelu; OpenAI CLIP's says quick_gelu) is SD 2.x:
    /// SD-Turbo's recipe when its scheduler is Euler with trailing spacing at 512x512 (as
    /// stabilityai/sd-turbo ships it), 768 with v-prediction, else base.
    public init(textEncoder: CLIPTextConfig, unet: UNet2DConditionConfig, scheduler: SchedulerConfig) {
        if unet.timeCondProjDim != nil {
            self = .lcm
        } else if unet.additionEmbedType == .textTime {
            self = scheduler.timestepSpacing == .trailing && unet.sampleSize == [64, 64] ? .sdxlTurbo : .sdxl
        } else if textEncoder.hiddenAct != .gelu {
            self = .sd1
        } else if scheduler.className == "EulerDiscreteScheduler", scheduler.timestepSpacing == .trailing,
                  scheduler.predictionType == .epsilon, unet.sampleSize == [64, 64] {
            self = .sdTurbo
        } else {
            self = scheduler.predictionType == .vPrediction ? .sd2 : .sd2Base
        }
    }

    /// Whether the family's text encoder is OpenCLIP ViT-H (1024 wide) rather than CLIP ViT-L (768).
    public var usesOpenCLIP: Bool { self == .sd2Base || self == .sd2 || self == .sdTurbo }

    /// Whether the family is SDXL's (two text encoders, added size conditioning).
    public var isSDXL: Bool { self == .sdxl || self == .sdxlTurbo }

    /// The configurations of the family's diffusers repository, for single-file checkpoints.
    var preset: ModelPreset? {
        switch self {
        case .sd1: ModelPreset(textEncoder: SD15Defaults.textEncoder, unet: SD15Defaults.unet, vae: SD15Defaults.vae,
                               scheduler: SD15Defaults.scheduler, padToken: nil)
        case .sd2Base: ModelPreset(textEncoder: SD2Defaults.textEncoder, unet: SD2Defaults.unet(sampleSize: 64, upcastAttention: false),
                                   vae: SD15Defaults.vae, scheduler: SD2Defaults.baseScheduler, padToken: "!")
        case .sd2: ModelPreset(textEncoder: SD2Defaults.textEncoder, unet: SD2Defaults.unet(sampleSize: 96, upcastAttention: true),
                               vae: SD15Defaults.vae, scheduler: SD2Defaults.vScheduler, padToken: "!")
        case .sdTurbo: ModelPreset(textEncoder: SD2Defaults.textEncoder, unet: SD2Defaults.unet(sampleSize: 64, upcastAttention: false),
                                   vae: SD15Defaults.vae, scheduler: SD2Defaults.turboScheduler, padToken: "!")
        case .lcm: nil
        case .sdxl: SDXLDefaults.preset(sampleSize: 128, scheduler: SDXLDefaults.scheduler)
        case .sdxlTurbo: SDXLDefaults.preset(sampleSize: 64, scheduler: SDXLDefaults.turboScheduler)
        }
    }

    /// The steps and guidance the family is meant to run with (the scheduler is the model's own).
    public var defaults: GenerationDefaults {
        switch self {
        case .sd1, .sd2Base, .sd2: GenerationDefaults(steps: 25, guidanceScale: 7.5)
        // stabilityai/sd-turbo's model card: one step, guidance_scale 0.
        case .sdTurbo: GenerationDefaults(steps: 1, guidanceScale: 0)
        // diffusers' LatentConsistencyModelPipeline defaults.
        case .lcm: GenerationDefaults(steps: 4, guidanceScale: 8.5)
        // StableDiffusionXLPipeline's guidance_scale default, with our usual 25 steps.
        case .sdxl: GenerationDefaults(steps: 25, guidanceScale: 5)
        // stabilityai/sdxl-turbo's model card: one step, guidance_scale 0.
        case .sdxlTurbo: GenerationDefaults(steps: 1, guidanceScale: 0)
        }
    }
}

/// Steps and guidance a run takes when the user gives none.
public struct GenerationDefaults: Equatable, Sendable {
    public let steps: Int
    public let guidanceScale: Float
}

/// One family's component configurations (the JSON its diffusers repository ships).
struct ModelPreset: Sendable {
    let textEncoder: String
    let unet: String
    let vae: String
    let scheduler: String
    /// The tokenizer's pad token when it differs from its own files' (SD 2.x pads with `!`).
    let padToken: String?
    /// SDXL: text_encoder_2's configuration; its tokenizer is the first one's vocabulary padding with `!`.
    var textEncoder2: String? = nil

    func config(component: String) -> String {
        switch component {
        case "text_encoder": textEncoder
        case "text_encoder_2": textEncoder2 ?? textEncoder
        case "unet": unet
        case "vae": vae
        default: scheduler
        }
    }
}

/// The configurations of SD 2.x (stabilityai/stable-diffusion-2-1 and -2-1-base, and sd-turbo, which
/// shares 2.1 base's networks); the VAE is SD 1.5's.
enum SD2Defaults {
    /// OpenCLIP ViT-H/14 as transformers' CLIPTextModel: 23 of the original 24 layers (SD 2 conditions
    /// on the penultimate layer's output, through the final layer norm).
    static let textEncoder = """
    {"hidden_act": "gelu", "hidden_size": 1024, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
     "max_position_embeddings": 77, "num_attention_heads": 16, "num_hidden_layers": 23, "vocab_size": 49408}
    """

    static func unet(sampleSize: Int, upcastAttention: Bool) -> String {
        """
        {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20],
         "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 1024,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0,
         "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
         "only_cross_attention": false, "out_channels": 4, "sample_size": \(sampleSize),
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
         "upcast_attention": \(upcastAttention), "use_linear_projection": true}
        """
    }

    /// stabilityai/stable-diffusion-2-1 (768): DDIM, v-prediction.
    static let vScheduler = """
    {"_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
     "clip_sample": false, "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": false,
     "skip_prk_steps": true, "steps_offset": 1}
    """

    /// stabilityai/stable-diffusion-2-1-base (512): PNDM, epsilon.
    static let baseScheduler = """
    {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
     "clip_sample": false, "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": false,
     "skip_prk_steps": true, "steps_offset": 1}
    """

    /// stabilityai/sd-turbo: Euler with trailing timestep spacing (one step starts at t = 999).
    static let turboScheduler = """
    {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
     "clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
     "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "timestep_spacing": "trailing",
     "use_karras_sigmas": false}
    """
}

/// The configurations of stabilityai/stable-diffusion-xl-base-1.0 (and sdxl-turbo, the same networks at 512).
enum SDXLDefaults {
    static func preset(sampleSize: Int, scheduler: String) -> ModelPreset {
        ModelPreset(textEncoder: textEncoder, unet: unet(sampleSize: sampleSize), vae: vae, scheduler: scheduler, padToken: nil,
                    textEncoder2: textEncoder2)
    }

    /// CLIP ViT-L/14 (SD 1.5's text encoder; SDXL conditions on its penultimate layer).
    static let textEncoder = """
    {"hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
     "max_position_embeddings": 77, "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 49408,
     "projection_dim": 768, "eos_token_id": 2}
    """

    /// OpenCLIP ViT-bigG/14 as transformers' CLIPTextModelWithProjection: all 32 layers and the projection.
    static let textEncoder2 = """
    {"hidden_act": "gelu", "hidden_size": 1280, "intermediate_size": 5120, "layer_norm_eps": 1e-05,
     "max_position_embeddings": 77, "num_attention_heads": 20, "num_hidden_layers": 32, "vocab_size": 49408,
     "projection_dim": 1280, "eos_token_id": 2}
    """

    static func unet(sampleSize: Int) -> String {
        """
        {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "addition_embed_type": "text_time",
         "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
         "block_out_channels": [320, 640, 1280], "center_input_sample": false, "cross_attention_dim": 2048,
         "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
         "dual_cross_attention": false, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
         "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
         "projection_class_embeddings_input_dim": 2816, "sample_size": \(sampleSize), "transformer_layers_per_block": [1, 2, 10],
         "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "use_linear_projection": true}
        """
    }

    /// SD 1.5's VAE architecture with SDXL's scaling factor (the fp16-fixed VAE has the same).
    static let vae = """
    {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
     "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
     "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
     "sample_size": 1024, "scaling_factor": 0.13025,
     "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
    """

    /// stable-diffusion-xl-base-1.0: Euler with leading spacing.
    static let scheduler = """
    {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
     "clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000, "prediction_type": "epsilon",
     "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1,
     "timestep_spacing": "leading", "use_karras_sigmas": false}
    """

    /// sdxl-turbo: Euler a with trailing spacing (one step starts at t = 999).
    static let turboScheduler = """
    {"_class_name": "EulerAncestralDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
     "beta_start": 0.00085, "clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000,
     "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": false, "skip_prk_steps": true,
     "steps_offset": 1, "timestep_spacing": "trailing", "use_karras_sigmas": false}
    """
}
